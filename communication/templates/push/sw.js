// The demo's service worker: shows each push (the JSON our Web Push provider encrypts:
// title, body, data, link, log_id) and opens its link when clicked.
"use strict";

self.addEventListener("push", (event) => {
  const message = event.data ? event.data.json() : {};
  event.waitUntil(
    self.registration.showNotification(message.title || "Notification", {
      body: message.body || "",
      tag: message.log_id,
      data: { link: message.link || "", logId: message.log_id || "", data: message.data || {} },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  if (event.notification.data.link) event.waitUntil(self.clients.openWindow(event.notification.data.link));
});
