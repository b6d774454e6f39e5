// careterm site console: live updates (server-sent events), acknowledge without reload.
(function () {
  "use strict";
  const body = document.body;
  const view = body.dataset.view;
  if (view !== "console" && view !== "wall") return; // the log-in page needs none of this

  window.careterm = { loadedAt: Date.now(), updates: 0 }; // tests check the page never reloads
  const live = document.getElementById("live");
  const updated = document.getElementById("updated");
  const toLogin = () => {
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
  };

  function apply(msg) {
    for (const [id, html] of Object.entries(msg.fragments)) {
      const el = document.getElementById(id);
      if (el) el.innerHTML = html;
    }
    body.dataset.version = msg.version;
    window.careterm.updates += 1;
    if (updated) updated.textContent = siteTime(new Date(), true);
  }

  // The site's time (the server's time zone), whatever the display's own setting.
  const offset = Number(body.dataset.utcOffset || 0) * 60000;
  function siteTime(d, seconds) {
    const t = new Date(d.getTime() + offset);
    const opts = { timeZone: "UTC", hour: "2-digit", minute: "2-digit" };
    if (seconds) opts.second = "2-digit";
    return t.toLocaleTimeString("en-GB", opts);
  }

  let retry = null;
  function connect() {
    const es = new EventSource("/events?view=" + view + "&lang=" + body.dataset.lang);
    es.addEventListener("state", (e) => {
      if (live) live.classList.remove("lost");
      apply(JSON.parse(e.data));
    });
    es.addEventListener("logout", () => {
      es.close();
      toLogin();
    });
    es.onerror = () => {
      if (live) live.classList.add("lost");
      if (es.readyState === EventSource.CLOSED && retry === null) {
        // The server refused the stream: a lost session, or the server is down.
        retry = setTimeout(async () => {
          retry = null;
          try {
            const r = await fetch("/api/state", { credentials: "same-origin" });
            if (r.status === 401) return toLogin();
          } catch (err) {
            // server down: keep trying
          }
          connect();
        }, 3000);
      }
    };
  }

  // Acknowledge: post in the background; the stream then brings the new list to every page.
  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (!form.classList || !form.classList.contains("ack-form")) return;
    e.preventDefault();
    const button = form.querySelector("button");
    if (button) button.disabled = true;
    try {
      const r = await fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": body.dataset.csrf },
        body: new FormData(form),
      });
      if (r.status === 401) return toLogin();
      if (!r.ok && button) button.disabled = false;
    } catch (err) {
      if (button) button.disabled = false;
    }
  });

  // An open page keeps its session alive (a wall display runs for days).
  setInterval(() => {
    fetch("/api/state", { credentials: "same-origin" }).then((r) => {
      if (r.status === 401) toLogin();
    });
  }, 10 * 60 * 1000);

  const clock = document.getElementById("clock");
  if (clock) {
    const zh = body.dataset.lang === "zh";
    const tick = () => {
      const d = new Date(Date.now() + offset);
      const opts = { timeZone: "UTC", month: zh ? "long" : "short", day: "numeric", weekday: "short" };
      clock.textContent = d.toLocaleDateString(zh ? "zh-CN" : "en-GB", opts) + "  " + siteTime(new Date(), false);
    };
    tick();
    setInterval(tick, 1000);
  }

  connect();
})();
