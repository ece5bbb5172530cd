// The notification bell demo (/notifications/demo/): sign in, list the inbox by cursor pages,
// mark read, archive, and take new notifications and counts live from the Server-Sent Events
// stream. EventSource cannot send an Authorization header, so it connects with a stream token
// (POST …/stream-token); when the stream drops and its token has expired, a new token is asked
// for and the stream resumes after the last event it delivered (last_event_id).
"use strict";

const signInForm = document.getElementById("sign-in");
const panel = document.getElementById("panel");
const bell = document.getElementById("bell");
const badge = document.getElementById("badge");
const items = document.getElementById("items");
const empty = document.getElementById("empty");
const more = document.getElementById("more");
const statusLine = document.getElementById("status");
const filter = document.getElementById("status-filter");
const unreadCount = document.getElementById("unread-count");
const live = document.getElementById("live");
const labels = panel.dataset;

let access = null;
let nextCursor = null;
let lastEventId = null;
let stream = null;

async function api(url, options = {}) {
  const response = await fetch(url, {
    ...options,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${access}`, ...(options.headers || {}) },
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || response.statusText);
  return body;
}

function itemUrl(id, action) {
  return `${labels.listUrl}/${encodeURIComponent(id)}/${action}`;
}

function render(notification) {
  const li = document.createElement("li");
  li.dataset.id = notification.id;
  li.className = notification.is_read ? "read" : "unread";
  const title = document.createElement(notification.action_url ? "a" : "div");
  title.className = "title";
  title.textContent = notification.title;
  if (notification.action_url) title.href = notification.action_url;
  const content = document.createElement("div");
  content.textContent = notification.content;
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = `${new Date(notification.created_at).toLocaleString()} · ${notification.type} · ${notification.priority}`;
  const actions = document.createElement("div");
  actions.className = "actions";
  if (!notification.is_read && !notification.archived_at) actions.append(button(labels.labelRead, "read", li, notification));
  const archiving = notification.archived_at ? "unarchive" : "archive";
  actions.append(button(notification.archived_at ? labels.labelUnarchive : labels.labelArchive, archiving, li, notification));
  li.append(title, content, meta, actions);
  return li;
}

function button(label, action, li, notification) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = label;
  element.dataset.action = action;
  element.addEventListener("click", async () => {
    try {
      const body = await api(itemUrl(notification.id, action), { method: "POST" });
      if (action === "read") li.replaceWith(render(body.data));
      else li.remove();
      showEmpty();
    } catch (error) {
      statusLine.textContent = error.message;
    }
  });
  return element;
}

function showEmpty() {
  empty.hidden = items.children.length > 0;
}

async function loadPage(first) {
  const params = new URLSearchParams({ cursor: first ? "" : nextCursor, page_size: "20" });
  if (filter.value) params.set("status", filter.value);
  const body = await api(`${labels.listUrl}?${params}`);
  if (first) items.replaceChildren();
  for (const notification of body.items) items.append(render(notification));
  nextCursor = body.next_cursor;
  more.hidden = !body.has_more;
  showEmpty();
}

function showCounts(counts) {
  badge.hidden = counts.unseen === 0;
  badge.textContent = counts.unseen > 99 ? "99+" : String(counts.unseen);
  badge.dataset.count = String(counts.unseen);
  unreadCount.textContent = `${counts.unread} ${labels.labelUnread}`;
}

function arrived(notification) {
  if (filter.value === "archived" || items.querySelector(`[data-id="${CSS.escape(notification.id)}"]`)) return;
  items.prepend(render(notification));
  showEmpty();
}

async function connect() {
  const token = (await api(labels.streamTokenUrl, { method: "POST" })).data.token;
  const params = new URLSearchParams({ token });
  if (lastEventId) params.set("last_event_id", lastEventId);
  stream = new EventSource(`${labels.streamUrl}?${params}`);
  stream.addEventListener("open", () => {
    live.textContent = labels.labelLive;
    live.classList.remove("offline");
  });
  stream.addEventListener("counts", (event) => showCounts(JSON.parse(event.data)));
  stream.addEventListener("notification", (event) => {
    lastEventId = event.lastEventId;
    arrived(JSON.parse(event.data));
  });
  stream.addEventListener("reset", (event) => {
    lastEventId = event.lastEventId;
    loadPage(true);
  });
  stream.addEventListener("error", () => {
    live.textContent = labels.labelOffline;
    live.classList.add("offline");
    // EventSource retries by itself, with the same URL; once it gives up (the token expired:
    // 401), connect again with a fresh token from where the stream left off.
    if (stream.readyState === EventSource.CLOSED) setTimeout(() => connect().catch(() => {}), 2000);
  });
}

async function openBell() {
  const opening = panel.hidden;
  panel.hidden = !opening;
  bell.setAttribute("aria-expanded", String(opening));
  const newest = items.querySelector("li");
  if (opening && newest) {
    const body = await api(labels.seenUrl, { method: "POST", body: JSON.stringify({ up_to: newest.dataset.id }) });
    showCounts(body.data);
  }
}

signInForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const response = await fetch(signInForm.dataset.tokenUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: document.getElementById("username").value, password: document.getElementById("password").value }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.message || "Sign-in failed");
    access = body.data.access;
    signInForm.hidden = true;
    bell.hidden = false;
    statusLine.textContent = "";
    await loadPage(true);
    await connect();
  } catch (error) {
    statusLine.textContent = error.message;
  }
});

bell.addEventListener("click", () => openBell().catch((error) => (statusLine.textContent = error.message)));
more.addEventListener("click", () => loadPage(false).catch((error) => (statusLine.textContent = error.message)));
filter.addEventListener("change", () => loadPage(true).catch((error) => (statusLine.textContent = error.message)));
