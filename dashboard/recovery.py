"""Recover a page whose widget code failed to load: reload it once, when the server answers.

The browser fetches a widget's code the first time the widget is drawn. If that one request
fails, Streamlit draws "TypeError: Failed to fetch dynamically imported module" in place of the
widget and never fetches it again: only a new page load does. Chromium fails the requests still
waiting for a connection with ERR_NETWORK_CHANGED whenever the machine's network configuration
changes, even requests to 127.0.0.1, and a page such as Batches asks for ~80 widget chunks at
once, six connections at a time. (Reproduced by changing a network interface while `/batches`
loaded: 6 of 8 loads lost NumberInput; with this script 8 of 8 recovered.)

So when the browser's own chunk-load error is drawn, the page reloads once the server answers,
unless the page is itself such a reload: then the code is really missing or broken and its error
stays on the page, where the browser tests see it.
"""

from __future__ import annotations

from typing import Final

import streamlit as st

RELOAD_ON_FAILED_CHUNK: Final = """<script>
    if (!window.fraudpipeChunkRetry) {
      window.fraudpipeChunkRetry = true;
      const key = "fraudpipe-chunk-reload";
      const retried = sessionStorage.getItem(key) === location.href;
      sessionStorage.removeItem(key);
      const failed = [  // Chromium, Firefox, Safari
        "Failed to fetch dynamically imported module",
        "error loading dynamically imported module",
        "Importing a module script failed",
      ];
      const reloadWhenReachable = (tries) => fetch(location.href, {cache: "no-store"})
        .then((r) => { if (!r.ok) throw new Error(r.status); })
        .then(() => { sessionStorage.setItem(key, location.href); location.reload(); })
        .catch(() => tries > 1 && setTimeout(() => reloadWhenReachable(tries - 1), 1000));
      let scheduled = retried;
      const check = () => {
        if (scheduled) return;
        const alerts = document.querySelectorAll('[data-testid="stAlertContentError"]');
        if ([...alerts].some((a) => failed.some((f) => a.textContent.includes(f)))) {
          scheduled = true;
          setTimeout(() => reloadWhenReachable(30), 1000);
        }
      };
      new MutationObserver(check).observe(document.body, {childList: true, subtree: true});
      check();
    }
    </script>"""


def reload_on_failed_widget_code() -> None:
    """Put the script in the page (fixed text: nothing of the viewer's goes into it)."""
    st.html(RELOAD_ON_FAILED_CHUNK, unsafe_allow_javascript=True)
