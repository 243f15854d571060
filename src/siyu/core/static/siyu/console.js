/* Siyu console behaviour: charts, copy buttons, random secrets. Small and dependency-free
   (htmx and ECharts are loaded from static/vendor when a page needs them). */
(function () {
  "use strict";

  // Charts: <div data-chart="ID"> + {{ option|json_script:"ID" }} — the option is data only.
  var charts = [];
  function initCharts(root) {
    if (typeof window.echarts === "undefined") return;
    (root || document).querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.chartReady) return;
      // the option inline (data-chart-option: fragments swapped in by htmx, which drops <script>
      // elements) or in a json_script element named by data-chart
      var text = el.dataset.chartOption;
      if (!text) {
        var source = document.getElementById(el.dataset.chart);
        if (!source) return;
        text = source.textContent;
      }
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(JSON.parse(text));
      el.dataset.chartReady = "1";
      charts.push(chart);
    });
  }
  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c.resize(); });
  });

  // Copy to clipboard: <button data-copy="#selector" data-copied-text="...">
  function onCopy(button) {
    var target = document.querySelector(button.dataset.copy);
    if (!target) return;
    var text = target.textContent.trim();
    var label = button.querySelector("span");
    var done = function () {
      if (!label) return;
      var before = label.textContent;
      label.textContent = button.dataset.copiedText || before;
      setTimeout(function () { label.textContent = before; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {
      var range = document.createRange();
      range.selectNodeContents(target);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      try { document.execCommand("copy"); done(); } catch (e) { /* selection stays for manual copy */ }
    }
  }

  // Random letters/digits for the callback Token / EncodingAESKey: <button data-random-for="input-id">
  var ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  function randomString(length) {
    var out = "";
    var bytes = new Uint8Array(length * 2);
    while (out.length < length) {
      window.crypto.getRandomValues(bytes);
      for (var i = 0; i < bytes.length && out.length < length; i++) {
        if (bytes[i] < 248) out += ALPHABET[bytes[i] % 62]; // 248 = 4 × 62: no modulo bias
      }
    }
    return out;
  }
  function onRandom(button) {
    var input = document.getElementById(button.dataset.randomFor);
    if (!input) return;
    var length = parseInt(input.dataset.randomLength || "32", 10);
    input.value = randomString(length);
    input.type = "text"; // the administrator has to copy it into the WeCom admin console
    input.focus();
    input.select();
  }

  document.addEventListener("click", function (event) {
    var copy = event.target.closest("[data-copy]");
    if (copy) { event.preventDefault(); onCopy(copy); return; }
    var random = event.target.closest("[data-random-for]");
    if (random) { event.preventDefault(); onRandom(random); return; }
    // "select all" checkbox: <input type="checkbox" data-check-all="CSS selector of the boxes">
    var all = event.target.closest("[data-check-all]");
    if (all) {
      document.querySelectorAll(all.dataset.checkAll).forEach(function (c) { c.checked = all.checked; });
    }
  });

  // The console runs under a strict Content-Security-Policy (script-src 'self'): no inline
  // handlers in templates; these delegated listeners stand in for them.

  // <select data-autosubmit> / <input type="checkbox" data-autosubmit>: submit the form on change
  document.addEventListener("change", function (event) {
    var el = event.target.closest("[data-autosubmit]");
    if (el && el.form) el.form.submit();
  });

  // <form data-confirm="question">: ask before submitting
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  // <img data-fallback="placeholder URL" data-fallback-alt="text">: an image that fails to load
  // (e.g. a channel QR code while WeCom is unreachable: the server answers 503) shows the placeholder.
  // "error" does not bubble: listen in the capture phase.
  document.addEventListener("error", function (event) {
    var img = event.target;
    if (!img || img.tagName !== "IMG" || !img.dataset.fallback || img.dataset.fellBack) return;
    img.dataset.fellBack = "1";
    if (img.dataset.fallbackAlt) { img.alt = img.dataset.fallbackAlt; img.title = img.dataset.fallbackAlt; }
    img.src = img.dataset.fallback;
  }, true);

  document.addEventListener("DOMContentLoaded", function () { initCharts(document); });
  // a swapped fragment (a task page re-read by polling) brings new chart elements: draw them
  document.addEventListener("htmx:afterSettle", function () { initCharts(document); });

  // A form whose fields depend on a select: <form data-toggle-by="kind" data-toggle-map='{"field": ["a", "b"]}'>
  // shows a field's row (.form-row[data-field]) only while the select has one of its values.
  function initToggles(root) {
    (root || document).querySelectorAll("form[data-toggle-by]").forEach(function (form) {
      var select = form.querySelector("[name='" + form.dataset.toggleBy + "']");
      if (!select || form.dataset.toggleReady) return;
      var map = JSON.parse(form.dataset.toggleMap || "{}");
      function apply() {
        Object.keys(map).forEach(function (name) {
          var row = form.querySelector(".form-row[data-field='" + name + "']");
          if (row) row.hidden = map[name].indexOf(select.value) < 0;
        });
      }
      select.addEventListener("change", apply);
      apply();
      form.dataset.toggleReady = "1";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { initToggles(document); });
  document.addEventListener("htmx:afterSwap", function (e) { initToggles(e.target); });
})();
