"""The Firewatch API with its fast lane taken out, for ``alert_storm.py --compare-fast-lane``.

Every request then takes the ordinary FastAPI path. Starlette builds the middleware stack
at the first request, so removing the lane from ``user_middleware`` here is enough.
"""

from __future__ import annotations

from starter.api.app import create_app
from starter.api.fast_lane import FastLane

app = create_app()
app.user_middleware = [m for m in app.user_middleware if m.cls is not FastLane]
