// Opt-in auto-refresh of the incident pages: a checkbox (#oc-autorefresh) remembered in this browser.
(function () {
  "use strict";
  var KEY = "oncall.autorefresh";
  var SECONDS = 15;
  var timer = null;

  function schedule(box) {
    if (timer) { clearTimeout(timer); timer = null; }
    if (box.checked) {
      timer = setTimeout(function () { window.location.reload(); }, SECONDS * 1000);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("oc-autorefresh");
    if (!box) { return; }
    try { box.checked = window.localStorage.getItem(KEY) === "on"; } catch (e) { /* private mode */ }
    box.addEventListener("change", function () {
      try { window.localStorage.setItem(KEY, box.checked ? "on" : "off"); } catch (e) { /* private mode */ }
      schedule(box);
    });
    schedule(box);
  });
})();
