"""Local stand-ins for notify's outside providers, run by `gavel up` as their own processes: an SMTP
server that keeps every mail (`notify.sandbox.smtp`), an SMS provider with the API of
notify.adapters.channels.HttpSmsSender (`notify.sandbox.sms`, which also serves the outbox page),
and `gavel outbox` to read what was sent (`notify.sandbox.outbox`)."""
