// The phone remote of unmix-desktop's karaoke night. Plain JS, no build step, no inline code (CSP).
// Every user-supplied text goes into the page through textContent, never as HTML.
"use strict";
(function () {
  const token = document.body.dataset.token;
  const $ = (id) => document.getElementById(id);
  const store = window.localStorage;  // the phone keeps its singer across tabs and a new link
  const meKey = "unmix-party-me";
  let me = null;
  try { me = JSON.parse(store.getItem(meKey) || "null"); } catch (e) { me = null; }
  let host = window.sessionStorage.getItem("party-host-" + token.slice(0, 6));
  let state = null;
  let ws = null;
  let retry = 500;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function button(text, fn, cls) {
    const b = el("button", "mini " + (cls || ""), text);
    b.type = "button";
    b.addEventListener("click", fn);
    return b;
  }
  let toastTimer = null;
  function toast(text, error) {
    const t = $("toast");
    t.textContent = text;
    t.className = "toast" + (error ? " error" : "");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => t.classList.add("hidden"), 4000);
  }

  async function api(method, path, body, extraHeaders) {
    const headers = { "X-Party-Token": token };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    Object.assign(headers, extraHeaders || {});
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                cache: "no-store", credentials: "omit" });
    } catch (e) {
      throw new Error("the host cannot be reached");
    }
    let data = {};
    try { data = await res.json(); } catch (e) { data = {}; }
    if (!res.ok) {
      if (res.status === 403 && /join first/.test(data.error || "") && me) {  // the host app restarted
        me = null;
        store.removeItem(meKey);
        render();
      }
      throw new Error(data.error || ("error " + res.status));
    }
    return data;
  }
  const hostCall = (action, args) => api("POST", "/api/host/" + action, args || {}, { "X-Host-Session": host || "" });

  function songText(x) { return x.artist ? x.artist + " – " + x.title : x.title; }

  // ------------------------------------------------------------------ rendering
  function render() {
    if (!state) return;
    const cur = state.current;
    $("now").textContent = cur ? cur.singer + " — " + songText(cur) : "Nobody yet";
    const nxt = state.upcoming[0];
    $("next").textContent = nxt ? "Next: " + nxt.singer + " — " + songText(nxt) : "";
    const known = me && state.singers.some((s) => s.id === me.singer_id);
    if (me && known) me.pending = false;
    // a singer the host removed (or a new evening) joins again; one who just joined waits for the next state
    if (me && !known && !me.pending) { me = null; store.removeItem(meKey); }
    $("join-card").classList.toggle("hidden", !!me);
    $("me-card").classList.toggle("hidden", !me);
    $("search-card").classList.toggle("hidden", !me);
    const rot = $("rotation");
    rot.replaceChildren();
    state.upcoming.forEach((u, i) => {
      const li = el("li", me && u.singer_id === me.singer_id ? "me" : "");
      li.dataset.singer = u.singer_id;
      const g = el("div", "grow");
      g.append(el("div", "who", (i + 1) + ". " + u.singer), el("div", "song", songText(u)));
      li.append(g);
      rot.append(li);
    });
    if (!state.upcoming.length) rot.append(el("li", "dim", "No songs waiting: request one!"));
    if (me) {
      const s = state.singers.find((x) => x.id === me.singer_id) || { name: me.name, place: null, requests: [] };
      $("me-name").textContent = s.name;
      $("myplace").textContent = s.place === null ? "" : (s.place === 0 ? "You're next!" : "Place " + (s.place + 1));
      const mine = $("mine");
      mine.replaceChildren();
      s.requests.forEach((r) => {
        const li = el("li");
        const g = el("div", "grow");
        g.append(el("div", "song", songText(r) + (r.key ? "  (key " + (r.key > 0 ? "+" : "") + r.key + ")" : "")));
        if (r.state === "failed") g.append(el("div", "failed", "Cannot play: " + (r.error || "failed")));
        li.append(g, button("Withdraw", () => withdraw(r.id), "warn"));
        li.dataset.request = r.id;
        mine.append(li);
      });
      if (!s.requests.length) mine.append(el("li", "dim", "No songs requested yet"));
    }
    const hist = $("history");
    hist.replaceChildren();
    state.history.slice().reverse().forEach((h) => {
      const li = el("li");
      const g = el("div", "grow");
      g.append(el("div", "who", h.singer), el("div", "song " + (h.outcome === "failed" ? "failed" : ""),
        songText(h) + (h.outcome === "sung" ? "" : "  (" + h.outcome + ")")));
      li.append(g);
      hist.append(li);
    });
    $("history-card").classList.toggle("hidden", !state.history.length);
    renderHost();
  }

  function renderHost() {
    $("host-form").classList.toggle("hidden", !!host);
    $("host-controls").classList.toggle("hidden", !host);
    if (!host || !state) return;
    const pb = state.playback || {};
    $("h-key-v").textContent = (pb.key > 0 ? "+" : "") + (pb.key || 0);
    $("h-tempo-v").textContent = Math.round((pb.tempo || 1) * 100) + "%";
    if (document.activeElement !== $("h-guide")) $("h-guide").value = Math.round((pb.guide || 0) * 100);
    const list = $("host-rotation");
    list.replaceChildren();
    const order = state.singers.map((s) => s.id);
    state.singers.forEach((s, i) => {
      const li = el("li", s.held ? "held" : "");
      li.dataset.singer = s.id;
      const g = el("div", "grow");
      const who = el("div", "who");
      const dot = el("span", "dot");
      dot.style.background = s.colour || "#888";
      who.append(dot, document.createTextNode(s.name + (s.done ? " ✓" : "")));
      g.append(who);
      s.requests.forEach((r) => {
        const line = el("div", "song " + (r.state === "failed" ? "failed" : ""), songText(r));
        const others = state.singers.filter((o) => o.id !== s.id);
        if (others.length) {
          const sel = el("select", "mini");
          sel.append(el("option", "", "move to…"));
          others.forEach((o) => { const op = el("option", "", o.name); op.value = o.id; sel.append(op); });
          sel.addEventListener("change", () => sel.value && act("move_request",
            { request_id: r.id, singer_id: Number(sel.value) }));
          line.append(" ", sel);
        }
        line.append(" ", button("✕", () => act("remove_request", { request_id: r.id }), "warn"));
        g.append(line);
      });
      const up = button("▲", () => {
        if (i === 0) return;
        const o = order.slice(); [o[i - 1], o[i]] = [o[i], o[i - 1]]; act("reorder", { order: o });
      });
      up.classList.add("h-up");
      const skip = button("Skip", () => act("skip_singer", { singer_id: s.id }));
      skip.classList.add("h-skip-singer");
      const hold = button(s.held ? "Release" : "Hold", () => act("hold", { singer_id: s.id, held: !s.held }));
      hold.classList.add("h-hold");
      li.append(g, up, skip, hold);
      list.append(li);
    });
  }

  // ------------------------------------------------------------------ actions
  async function act(action, args) {
    try {
      await hostCall(action, args);
    } catch (e) {
      if (/PIN/.test(e.message)) {
        host = null;
        window.sessionStorage.removeItem("party-host-" + token.slice(0, 6));
        renderHost();
      }
      toast(e.message, true);
    }
  }
  async function withdraw(requestId) {
    try {
      await api("POST", "/api/withdraw", { singer_id: me.singer_id, secret: me.secret, request_id: requestId });
      toast("Withdrawn");
    } catch (e) { toast(e.message, true); }
  }
  async function requestSong(songId, title) {
    const keyValue = $("key").value;
    const body = { singer_id: me.singer_id, secret: me.secret, song_id: songId };
    if (keyValue !== "") body.key = Number(keyValue);
    try {
      await api("POST", "/api/request", body);
      toast("Requested: " + title);
    } catch (e) { toast(e.message, true); }
  }
  let searchTimer = null;
  async function search() {
    const q = $("search").value;
    try {
      const data = await api("GET", "/api/search?q=" + encodeURIComponent(q));
      const list = $("results");
      list.replaceChildren();
      data.songs.forEach((s) => {
        const li = el("li");
        li.dataset.song = s.id;
        const g = el("div", "grow");
        g.append(el("div", "who", s.title), el("div", "song", s.artist || ""));
        li.append(g, button("Request", () => requestSong(s.id, s.title), "primary"));
        list.append(li);
      });
      if (!data.songs.length) list.append(el("li", "dim", "No song matches"));
    } catch (e) { toast(e.message, true); }
  }

  // ------------------------------------------------------------------ live updates
  function connect() {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(proto + location.host + "/ws?t=" + encodeURIComponent(token));
    ws.addEventListener("open", () => { retry = 500; $("conn").textContent = "live"; $("conn").className = "conn on"; });
    ws.addEventListener("message", (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === "state") { state = msg.state; render(); }
    });
    ws.addEventListener("close", (ev) => {
      $("conn").textContent = "offline"; $("conn").className = "conn off";
      if (ev.code === 4001 || ev.code === 1001) { toast(ev.reason || "The host closed the remote", true); }
      if (ev.code === 4001) return;
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 8000);
    });
  }

  // ------------------------------------------------------------------ wiring
  [0, -1, -2, -3, -4, -5, -6, 1, 2, 3, 4, 5, 6].forEach((k) => {
    const op = el("option", "", k === 0 ? "my usual key" : (k > 0 ? "+" : "") + k + " semitones");
    op.value = k === 0 ? "" : String(k);
    $("key").append(op);
  });
  $("key").value = "";
  $("join-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      me = await api("POST", "/api/join", { name: $("name").value });
      store.setItem(meKey, JSON.stringify(me));
      me.pending = true;
      render();
      search();
    } catch (e) { toast(e.message, true); }
  });
  $("search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(search, 200); });
  $("host-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await api("POST", "/api/host/login", { pin: $("host-pin").value });
      host = r.host;
      window.sessionStorage.setItem("party-host-" + token.slice(0, 6), host);
      $("host-pin").value = "";
      renderHost();
    } catch (e) { toast(e.message, true); }
  });
  document.querySelectorAll("#host-controls [data-action]").forEach((b) =>
    b.addEventListener("click", () => act(b.dataset.action)));
  document.querySelectorAll("#host-controls [data-step]").forEach((b) => b.addEventListener("click", () => {
    const [name, step] = b.dataset.step.split(":");
    const pb = (state && state.playback) || {};
    let v = (pb[name] === undefined ? (name === "tempo" ? 1 : 0) : pb[name]) + Number(step);
    v = name === "key" ? Math.max(-12, Math.min(12, Math.round(v))) : Math.max(0.5, Math.min(1.5, Math.round(v * 100) / 100));
    act(name, { value: v });
  }));
  $("h-guide").addEventListener("change", () => act("guide", { value: Number($("h-guide").value) / 100 }));
  $("h-add").addEventListener("click", () => {
    const name = $("h-new-singer").value;
    if (name.trim()) act("add_singer", { name }).then(() => { $("h-new-singer").value = ""; });
  });
  $("h-rotate").addEventListener("click", async () => {
    try {
      const r = await hostCall("rotate_token", {});
      location.replace(r.url.replace(/^https?:\/\/[^/]+/, ""));
    } catch (e) { toast(e.message, true); }
  });
  if (me) search();
  connect();
})();
