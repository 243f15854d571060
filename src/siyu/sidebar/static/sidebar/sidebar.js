/* The chat sidebar: register the JS-SDK (signatures from the server), ask WeCom's client which
   chat this page is beside, load that customer's or group's panel, and send into the chat. */
(function () {
  "use strict";
  var root = document.getElementById("sidebar");
  var status = document.getElementById("sidebar-status");

  function fail(text) {
    if (!status) return;
    status.textContent = text;
    status.className = "flash error";
    status.hidden = false;
  }
  function ok(res) { return /:ok$/.test((res && (res.err_msg || res.errMsg)) || ""); }
  function msg(res) { return (res && (res.err_msg || res.errMsg)) || ""; }

  function load(url) {
    window.htmx.ajax("GET", url, { target: "#panel", swap: "innerHTML" }).then(function () {
      if (status) status.hidden = true;
    });
  }

  function withChat() {
    window.wx.invoke("getContext", {}, function (ctx) {
      if (!ok(ctx)) { fail(root.dataset.msgFailed + " " + msg(ctx)); return; }
      if (["single_chat_tools", "contact_profile", "single_kf_tools"].indexOf(ctx.entry) >= 0) {
        window.wx.invoke("getCurExternalContact", {}, function (res) {
          if (!ok(res)) { fail(root.dataset.msgFailed + " " + msg(res)); return; }
          load(root.dataset.customerUrl.replace("__ID__", encodeURIComponent(res.userId)));
        });
      } else if (ctx.entry === "group_chat_tools") {
        window.wx.invoke("getCurExternalChat", {}, function (res) {
          if (!ok(res)) { fail(root.dataset.msgFailed + " " + msg(res)); return; }
          load(root.dataset.groupUrl.replace("__ID__", encodeURIComponent(res.chatId)));
        });
      } else {
        fail(root.dataset.msgNoChat);
      }
    });
  }

  // WeCom renews its tickets at times: a page refused for its signature (e=40093, e=42012) asks
  // once more with fresh tickets before it gives up
  function refusedSignature(text) { return /e=(40093|42012)/.test(text || ""); }

  function register(fresh) {
    if (!window.wx) { fail(root.dataset.msgNoSdk); return; }
    var url = location.href.split("#")[0];
    var done = false;
    function refused(text) {
      if (done) return;
      done = true;
      if (!fresh && refusedSignature(text)) { register(true); return; }
      fail(root.dataset.msgConfigFailed + " " + text);
    }
    fetch(root.dataset.signatureUrl + "?url=" + encodeURIComponent(url) + (fresh ? "&fresh=1" : ""), { credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (res) {
        if (!res.ok) { fail(res.body.error || ""); return; }
        var s = res.body;
        window.wx.config(s.config);
        window.wx.error(function (e) { refused(e.errMsg || ""); });
        window.wx.agentConfig(Object.assign({}, s.agentConfig, {
          success: function () { if (!done) { done = true; withChat(); } },
          fail: function (e) { refused(msg(e)); }
        }));
      })
      .catch(function (e) { fail(root.dataset.msgFailed + " " + ((e && e.message) || "")); });
  }

  // "send to chat" buttons in a panel: sendChatMessage with the text of the field they name
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-send-text]");
    if (!btn || !window.wx) return;
    var field = document.querySelector(btn.dataset.sendText);
    var out = btn.parentNode.querySelector("[data-send-result]");
    var text = field ? field.value.trim() : "";
    if (!text) { if (field) field.focus(); return; }
    btn.disabled = true;
    window.wx.invoke("sendChatMessage", { msgtype: "text", enterChat: false, text: { content: text } }, function (res) {
      btn.disabled = false;
      if (out) out.textContent = ok(res) ? btn.dataset.sent : msg(res);
      if (ok(res) && field) field.value = "";
    });
  });

  // library items: the server prepares the message (variables filled, a trackable link, a fresh
  // media id), the client sends it, and the server counts the send
  function csrf() { var m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/); return m ? decodeURIComponent(m[1]) : ""; }
  function post(url, data) {
    return fetch(url, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf() }, body: new URLSearchParams(data) })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); });
  }
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-prepare]");
    if (!btn || !window.wx) return;
    var box = btn.closest("[data-prepare-url]");
    var out = btn.parentNode.querySelector("[data-send-result]");
    function say(text) { if (out) out.textContent = text; }
    btn.disabled = true;
    post(box.dataset.prepareUrl, { item: btn.dataset.prepare, id: btn.dataset.id, chat_type: btn.dataset.chatType, chat_key: btn.dataset.chatKey })
      .then(function (res) {
        if (!res.ok) { btn.disabled = false; say(res.body.error || ""); return; }
        window.wx.invoke("sendChatMessage", Object.assign({ enterChat: false }, res.body.payload), function (r) {
          btn.disabled = false;
          if (!ok(r)) { say(msg(r)); return; }
          post(box.dataset.sentUrl, { token: res.body.token }).then(function () { say(box.dataset.sentText || "✓"); });
        });
      })
      .catch(function () { btn.disabled = false; });
  });

  if (root) register();
})();
