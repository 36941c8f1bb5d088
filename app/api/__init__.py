"""The HTTP edge: CDS services, feedback, health and readiness, metrics, model cards.

Routes are thin: they verify the caller, parse the protocol objects and call into the layers. Upstream
exceptions are translated into HTTP answers here and nowhere else (``app.api.errors``).
"""
