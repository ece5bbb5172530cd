// The Web Push demo page (/push/demo/): sign in, subscribe with the VAPID key, register the
// subscription as a device. MDN PushManager.subscribe, PushSubscription.toJSON.
"use strict";

const form = document.getElementById("enable");
const status = document.getElementById("status");

function keyBytes(base64url) {
  const padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

async function signIn() {
  const response = await fetch(form.dataset.tokenUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: document.getElementById("username").value, password: document.getElementById("password").value }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || "Sign-in failed");
  return body.data.access;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const access = await signIn();
    const registration = await navigator.serviceWorker.register(form.dataset.workerUrl);
    await navigator.serviceWorker.ready;
    if ((await Notification.requestPermission()) !== "granted") throw new Error("Notifications are blocked for this site.");
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: keyBytes(form.dataset.vapidKey),
    });
    const response = await fetch(form.dataset.devicesUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${access}` },
      body: JSON.stringify({ platform: "web", subscription: subscription.toJSON(), name: "Web Push demo" }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.message);
    status.textContent = `Registered as device ${body.data.id}.`;
    status.dataset.deviceId = body.data.id;
  } catch (error) {
    status.textContent = `Not registered: ${error.message}`;
  }
});
