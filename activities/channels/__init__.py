"""Real delivery channels behind the one notification interface.

``settings``   what is switched on (pydantic-settings, FIREWATCH_* env)
``base``       the Sender protocol and the two failure kinds every channel maps to
``ledger``     idempotency records (pending before the call, sent/failed after)
``slack``      Slack Web API: DMs and channel posts, reconcile via message metadata
``twilio_sms`` Twilio SMS and voice, reconcile via the body's ref marker
``email``      SMTP (STARTTLS), plain text + HTML
``slack_incident_message``  the single #incidents message, its thread, the war room
``formatting`` markdown of the templates → Slack mrkdwn, SMS text, HTML

Nothing here is imported by workflow code except :mod:`snapshot` (pure) and the
activity classes' names.
"""
