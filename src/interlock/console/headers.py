"""Security headers of the console's pages and assets.

The page runs no inline script and loads nothing from elsewhere (no CDN: the console works
without internet), may not be framed, and `index.html` is never cached (a new build's
hashed assets are picked up at once); hashed assets are immutable.
"""

from __future__ import annotations

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "worker-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

PAGE = {**COMMON, "Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
        "Cache-Control": "no-store"}
ASSET = {**COMMON, "Cache-Control": "public, max-age=31536000, immutable"}
