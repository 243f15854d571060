/* Siyu console: the welcome attachments editor and the phone-frame message preview.
 * No inline JS (CSP): everything is wired from data attributes.
 * - [data-att-editor]: a Django formset (prefix "att") of attachment rows; add / remove / reorder.
 * - [data-phone-preview][data-live]: redraws the phone frame from its form as the operator types,
 *   fills the variables with the sample customer and employee, and shows WeChat's limits. */
(function () {
  "use strict";

  var KIND_LABELS = { image: "图片", link: "链接", miniprogram: "小程序", video: "视频", file: "文件" };
  var L = { empty: "输入内容后在这里预览", chars: "字", bytes: "字节", "too-long": "文本超过上限",
    "too-many": "附件超过上限", "bad-kind": "这类消息不支持的附件类型", "moment-mix": "朋友圈只能是 9 张以内的图片，或 1 个视频，或 1 个链接" };

  function labels(preview) {
    // the page's language: translated labels from the preview's data-l-* attributes
    Object.keys(KIND_LABELS).forEach(function (k) {
      var v = preview.getAttribute("data-l-" + k);
      if (v) KIND_LABELS[k] = v;
    });
    Object.keys(L).forEach(function (k) {
      var v = preview.getAttribute("data-l-" + k);
      if (v) L[k] = v;
    });
  }
  var UPLOAD_HINTS = {
    image: "JPG/PNG，≤ 2MB",
    miniprogram: "封面图 JPG/PNG，≤ 2MB，建议 520×416",
    video: "MP4，≤ 10MB",
    file: "≤ 20MB"
  };
  var ACCEPT = { image: "image/jpeg,image/png", miniprogram: "image/jpeg,image/png", video: "video/mp4", file: "" };

  function utf8len(s) {
    return new TextEncoder().encode(s).length;
  }

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = text;
    return n;
  }

  function field(root, suffix) {
    return root.querySelector('[name$="-' + suffix + '"]');
  }

  // --- the attachments editor ------------------------------------------------------------------
  function rowKind(row) {
    var s = row.querySelector("[data-att-kind]");
    return s ? s.value : "";
  }

  function editorText(row, key, fallback) {
    var editor = row.closest("[data-att-editor]");
    return (editor && editor.getAttribute("data-l-" + key)) || fallback;
  }

  function showFields(row) {
    var kind = rowKind(row);
    row.querySelectorAll("[data-for]").forEach(function (f) {
      f.hidden = f.getAttribute("data-for").split(" ").indexOf(kind) < 0;
    });
    var file = row.querySelector("[data-att-file]");
    if (file) file.setAttribute("accept", ACCEPT[kind] || "");
    var hint = row.querySelector("[data-upload-hint]");
    if (hint) hint.textContent = editorText(row, "hint-" + kind, UPLOAD_HINTS[kind] || "");
    var label = row.querySelector("[data-upload-label]");
    if (label) label.textContent = kind === "miniprogram" ? editorText(row, "cover", "封面图片") : editorText(row, "upload", "上传文件");
  }

  function liveRows(editor) {
    return Array.prototype.filter.call(editor.querySelectorAll("[data-att-row]"), function (r) {
      return !r.classList.contains("is-deleted");
    });
  }

  function renumber(editor) {
    liveRows(editor).forEach(function (row, i) {
      var order = row.querySelector("[data-att-order]");
      if (order) order.value = String(i + 1);
      var idx = row.querySelector("[data-att-index]");
      if (idx) idx.textContent = String(i + 1);
    });
    var max = parseInt(editor.getAttribute("data-max") || "9", 10);
    var full = liveRows(editor).length >= max;
    editor.querySelectorAll("[data-att-add]").forEach(function (b) {
      b.disabled = full;
    });
  }

  function changed(editor) {
    renumber(editor);
    editor.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function wireRow(editor, row) {
    showFields(row);
    var kind = row.querySelector("[data-att-kind]");
    if (kind) kind.addEventListener("change", function () { showFields(row); });
    var del = row.querySelector("[data-att-delete]");
    if (del) {
      if (del.checked) row.classList.add("is-deleted");
      del.addEventListener("change", function () {
        row.classList.toggle("is-deleted", del.checked);
        row.hidden = del.checked;
        changed(editor);
      });
      row.hidden = del.checked;
    }
    var up = row.querySelector("[data-att-up]");
    if (up) up.addEventListener("click", function () {
      var prev = row.previousElementSibling;
      while (prev && prev.classList.contains("is-deleted")) prev = prev.previousElementSibling;
      if (prev) row.parentNode.insertBefore(row, prev);
      changed(editor);
    });
    var down = row.querySelector("[data-att-down]");
    if (down) down.addEventListener("click", function () {
      var next = row.nextElementSibling;
      while (next && next.classList.contains("is-deleted")) next = next.nextElementSibling;
      if (next) row.parentNode.insertBefore(next, row);
      changed(editor);
    });
  }

  function setupEditor(editor) {
    var total = editor.querySelector('[name$="-TOTAL_FORMS"]');
    var tpl = editor.querySelector("template[data-att-template]");
    var rows = editor.querySelector("[data-att-rows]");
    rows.querySelectorAll("[data-att-row]").forEach(function (r) { wireRow(editor, r); });
    editor.querySelectorAll("[data-att-add]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var max = parseInt(editor.getAttribute("data-max") || "9", 10);
        if (!total || !tpl || liveRows(editor).length >= max) return;
        var index = parseInt(total.value, 10) || 0;
        var holder = document.createElement("div");
        holder.innerHTML = tpl.innerHTML.replace(/__prefix__/g, String(index));
        var row = holder.querySelector("[data-att-row]");
        total.value = String(index + 1);
        var kind = row.querySelector("[data-att-kind]");
        if (kind) kind.value = btn.getAttribute("data-att-add");
        rows.appendChild(row);
        wireRow(editor, row);
        changed(editor);
        var first = row.querySelector("input:not([type=hidden]):not([hidden])");
        if (first) first.focus();
      });
    });
    renumber(editor);
  }

  // --- reading a form into bubbles ---------------------------------------------------------------
  var objectUrls = [];

  function fileUrl(input) {
    if (!input || !input.files || !input.files.length) return "";
    var f = input.files[0];
    if (!/^image\//.test(f.type)) return "";
    var u = URL.createObjectURL(f);
    objectUrls.push(u);
    return u;
  }

  function fileName(input, fallback) {
    return input && input.files && input.files.length ? input.files[0].name : fallback || "";
  }

  function readEditor(form) {
    var editor = form.querySelector("[data-att-editor]");
    if (!editor) return [];
    return liveRows(editor).map(function (row) {
      var kind = rowKind(row);
      var file = row.querySelector("[data-att-file]");
      var stored = row.querySelector("[data-att-stored]");
      var storedName = field(row, "stored_name") ? field(row, "stored_name").value : "";
      var thumb = fileUrl(file) || (file && file.files && file.files.length ? "" : row.getAttribute("data-thumb") || "");
      return {
        type: kind,
        title: (field(row, "title") || {}).value || "",
        desc: (field(row, "desc") || {}).value || "",
        src: kind === "link" ? (field(row, "picurl") || {}).value || "" : thumb,
        name: fileName(file, storedName || (stored ? stored.textContent : ""))
      };
    });
  }

  function readCompose(form) {
    var out = [];
    var imgs = form.querySelector("[name=images]");
    if (imgs && imgs.files) {
      Array.prototype.forEach.call(imgs.files, function (f) {
        var u = /^image\//.test(f.type) ? URL.createObjectURL(f) : "";
        if (u) objectUrls.push(u);
        out.push({ type: "image", src: u, name: f.name });
      });
    }
    var video = form.querySelector("[name=video]");
    if (video && video.files && video.files.length) out.push({ type: "video", name: video.files[0].name });
    var file = form.querySelector("[name=file]");
    if (file && file.files && file.files.length) out.push({ type: "file", name: file.files[0].name });
    var lt = form.querySelector("[name=link_title]"), lu = form.querySelector("[name=link_url]");
    if (lt && lu && (lt.value || lu.value)) {
      var ld = form.querySelector("[name=link_desc]");
      out.push({ type: "link", title: lt.value, desc: ld ? ld.value : "", src: "" });
    }
    var mt = form.querySelector("[name=mp_title]"), ma = form.querySelector("[name=mp_appid]");
    if (mt && ma && (mt.value || ma.value)) {
      var cover = out.filter(function (a) { return a.type === "image"; })[0];
      out.push({ type: "miniprogram", title: mt.value, src: cover ? cover.src : "" });
    }
    var kept = form.querySelectorAll("[data-kept-attachment]");
    kept.forEach(function (k) {
      out.unshift({ type: k.getAttribute("data-kept-attachment"), name: k.getAttribute("data-name") || "", title: k.getAttribute("data-name") || "", src: "" });
    });
    return out;
  }

  // --- drawing -----------------------------------------------------------------------------------
  function bubble(b) {
    var box;
    if (b.type === "text") {
      box = el("div", "bubble bubble-text", b.text);
    } else if (b.type === "image") {
      box = el("div", "bubble bubble-image");
      if (b.src) {
        var img = el("img");
        img.src = b.src;
        img.alt = b.name || "";
        box.appendChild(img);
      } else {
        box.appendChild(el("span", "bubble-placeholder", KIND_LABELS.image + " " + (b.name || "")));
      }
    } else if (b.type === "link") {
      box = el("div", "bubble msg-card card-link");
      box.appendChild(el("div", "card-title", b.title || ""));
      var row = el("div", "card-row");
      row.appendChild(el("div", "card-desc", b.desc || ""));
      if (b.src && /^https?:\/\//.test(b.src)) {
        var t = el("img", "card-thumb");
        t.src = b.src;
        t.alt = "";
        row.appendChild(t);
      } else {
        row.appendChild(el("span", "card-thumb card-thumb-empty"));
      }
      box.appendChild(row);
    } else if (b.type === "miniprogram") {
      box = el("div", "bubble msg-card card-mp");
      box.appendChild(el("div", "card-app", KIND_LABELS.miniprogram));
      box.appendChild(el("div", "card-title", b.title || ""));
      var cover = el("div", "card-cover");
      if (b.src) {
        var c = el("img");
        c.src = b.src;
        c.alt = "";
        cover.appendChild(c);
      }
      box.appendChild(cover);
      box.appendChild(el("div", "card-foot", KIND_LABELS.miniprogram));
    } else if (b.type === "video") {
      box = el("div", "bubble msg-card card-video");
      box.appendChild(el("span", "card-play", "▶"));
      box.appendChild(document.createTextNode(" " + (b.name || KIND_LABELS.video)));
    } else {
      box = el("div", "bubble msg-card card-file");
      box.appendChild(el("span", "card-fileicon", "📄"));
      box.appendChild(document.createTextNode(" " + (b.name || KIND_LABELS.file)));
    }
    return box;
  }

  function fill(text, vars) {
    Object.keys(vars).forEach(function (k) {
      text = text.split(k).join(vars[k]);
    });
    return text;
  }

  function jsonIn(root, id) {
    var n = root.querySelector("#" + id);
    try {
      return n ? JSON.parse(n.textContent) : {};
    } catch (e) {
      return {};
    }
  }

  var LIMITS = {
    welcome: { text_bytes: 4000, max_attachments: 9, kinds: ["image", "link", "miniprogram", "video", "file"] },
    customer: { text_bytes: 4000, max_attachments: 9, kinds: ["image", "link", "miniprogram", "video", "file"] },
    group: { text_bytes: 4000, max_attachments: 9, kinds: ["image", "link", "miniprogram", "video", "file"] },
    moment: { text_chars: 2000, max_attachments: 9, kinds: ["image", "video", "link"], moment: true }
  };

  function problems(limits, text, atts) {
    var out = [];
    if (limits.text_chars && text.length > limits.text_chars) out.push(L["too-long"] + " (" + limits.text_chars + " " + L.chars + ")");
    if (limits.text_bytes && utf8len(text) > limits.text_bytes) out.push(L["too-long"] + " (" + limits.text_bytes + " " + L.bytes + ")");
    if (atts.length > limits.max_attachments) out.push(L["too-many"] + " (" + limits.max_attachments + ")");
    var bad = atts.filter(function (a) { return limits.kinds.indexOf(a.type) < 0; });
    if (bad.length) out.push(L["bad-kind"] + ": " + KIND_LABELS[bad[0].type]);
    if (limits.moment) {
      var kinds = {};
      atts.forEach(function (a) { kinds[a.type] = (kinds[a.type] || 0) + 1; });
      if (Object.keys(kinds).length > 1 || (kinds.video || 0) > 1 || (kinds.link || 0) > 1) out.push(L["moment-mix"]);
    }
    return out;
  }

  function draw(preview, form) {
    var kindSelect = form.querySelector("select[name=kind]");
    var kind = kindSelect && LIMITS[kindSelect.value] ? kindSelect.value : preview.getAttribute("data-kind");
    var limits = kindSelect && LIMITS[kind] ? LIMITS[kind] : jsonIn(preview, "phone-preview-limits");
    var vars = jsonIn(preview, "phone-preview-vars");
    var employee = preview.getAttribute("data-employee") || "";
    var textarea = form.querySelector("[data-preview-text]") || form.querySelector("textarea[name=text]");
    var text = textarea ? textarea.value : "";
    objectUrls.forEach(function (u) { URL.revokeObjectURL(u); });
    objectUrls = [];
    var atts = form.querySelector("[data-att-editor]") ? readEditor(form) : readCompose(form);
    var list = [];
    if (text) list.push({ type: "text", text: fill(text, vars) });
    list = list.concat(atts);

    var phone = preview.querySelector(".phone");
    if (phone) phone.classList.toggle("phone-moment", kind === "moment");
    var chat = preview.querySelector("[data-phone-bubbles]");
    chat.textContent = "";
    if (!list.length) chat.appendChild(el("p", "phone-empty", L.empty));
    list.forEach(function (b) {
      var msg = el("div", "msg");
      msg.setAttribute("data-testid", "bubble-" + b.type);
      msg.appendChild(el("span", "msg-avatar", employee.slice(0, 1)));
      var body = el("div", "msg-body");
      body.appendChild(el("div", "msg-name", employee));
      body.appendChild(bubble(b));
      msg.appendChild(body);
      chat.appendChild(msg);
    });

    var t = preview.querySelector("[data-limit-text]");
    if (t) {
      var used = limits.text_chars ? text.length : utf8len(text);
      var max = limits.text_chars || limits.text_bytes;
      t.textContent = String(used);
      t.parentNode.lastChild.textContent = " / " + max + " " + (limits.text_chars ? L.chars : L.bytes);
      t.classList.toggle("text-danger", used > max);
    }
    var c = preview.querySelector("[data-limit-count]");
    if (c) {
      c.textContent = String(atts.length);
      c.classList.toggle("text-danger", atts.length > limits.max_attachments);
    }
    var k = preview.querySelector("[data-limit-kinds]");
    if (k) k.textContent = limits.kinds.map(function (x) { return KIND_LABELS[x]; }).join("、");
    var err = preview.querySelector("[data-limit-error]");
    if (err) {
      var p = problems(limits, text, atts);
      err.textContent = p.join("；");
      err.hidden = !p.length;
    }
  }

  function setupPreview(preview) {
    labels(preview);
    var id = preview.getAttribute("data-form");
    var form = id ? document.getElementById(id) : preview.closest("form");
    if (!form) return;
    var pending = false;
    function schedule() {
      if (pending) return;
      pending = true;
      window.requestAnimationFrame(function () {
        pending = false;
        draw(preview, form);
      });
    }
    form.addEventListener("input", schedule);
    form.addEventListener("change", schedule);
    draw(preview, form);
  }

  function init() {
    document.querySelectorAll("[data-att-editor]").forEach(setupEditor);
    document.querySelectorAll("[data-phone-preview][data-live]").forEach(setupPreview);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
