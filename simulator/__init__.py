"""A carrier simulator: Twilio's REST API and Vonage's Voice API on a local socket, playing phone calls
against our webhooks.

Our code keeps using the real twilio SDK; only its base URL changes (TWILIO_API_BASE_URL, which
DEBUG without TWILIO_ACCOUNT_SID points at http://127.0.0.1:8765). Start it with

    python -m simulator

For every accepted Calls.create it sends the status callbacks (initiated, ringing, answered,
completed), the async answering-machine result, fetches our TwiML and "presses" digits at <Gather>,
all as signed HTTP requests like Twilio's, and prints a transcript of what the callee hears.

Which callee you get is chosen per phone number. A scenario set with `set_scenario` wins; otherwise
the LAST DIGIT of the number decides:

    ...1  press_1      answers, listens, presses 1 (acknowledges)
    ...2  press_2      answers, presses 2
    ...3  no_answer    rings until the ring timeout, no-answer
    ...4  busy         busy
    ...5  voicemail    a machine answers (AnsweredBy machine_start, or machine_end_beep with
                       MachineDetection=DetectMessageEnd) and never presses anything
    ...6  silent       answers, listens, presses nothing (the TwiML after <Gather> plays)
    ...7  api_error    Calls.create answers 500 with Twilio's error JSON; no call
    ...8  api_timeout  Calls.create holds the request (15 s by default), then answers 503; no call
    ...9  hang_up      answers, fetches the TwiML, hangs up at once
    ...0  the simulator's default scenario (press_1 unless --default-scenario says otherwise)

press_9 (presses 9, a digit that means nothing, then 1 when asked again) is only available through
`set_scenario`. `set_outage("twilio" | "vonage", Scenario.API_ERROR | Scenario.API_TIMEOUT)` makes one
carrier's API fail for every number while the other plays each number's scenario (failover drills).
Vonage (POST /v1/calls with an application JWT, NCCO, webhooks signed with the signature secret) is
served when the simulator is given the Vonage application id, public key and signature secret.
GET /_simulator/calls lists the calls as JSON.
"""

from simulator.records import SimulatedCall
from simulator.scenarios import Scenario
from simulator.server import CarrierSimulator

__all__ = ["CarrierSimulator", "Scenario", "SimulatedCall"]
