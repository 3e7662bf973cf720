"""Voice carriers behind one interface: `get_provider(name).place_call(request)`."""

from orchestrator.voice import breaker
from orchestrator.voice.base import CallRequest, ProviderError, VoiceProvider, get_provider

__all__ = ["CallRequest", "ProviderError", "VoiceProvider", "breaker", "get_provider"]
