"""Security headers of the console's pages and assets.

The page runs no inline script and loads nothing from elsewhere (no CDN: the console works
without internet), may not be framed, and `index.html` is never cached (a new build's
hashed assets are picked up at once); hashed assets are immutable.
"""

from __future__ import annotations

CONNECT = "connect-src 'self'"
_CSP = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    CONNECT,
    "worker-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)


def csp(connect: tuple[str, ...] = ()) -> str:
    """The page's policy; `connect` adds origins it may fetch from (the OIDC issuer)."""
    return "; ".join(d if d != CONNECT else " ".join((CONNECT, *connect)) for d in _CSP)


CSP = csp()

COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

PAGE = {**COMMON, "Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
        "Cache-Control": "no-store"}


def page(connect: tuple[str, ...] = ()) -> dict[str, str]:
    return PAGE if not connect else {**PAGE, "Content-Security-Policy": csp(connect)}
ASSET = {**COMMON, "Cache-Control": "public, max-age=31536000, immutable"}
