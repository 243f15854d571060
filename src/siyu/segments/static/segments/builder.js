/* The segment builder (siyu.segments): nested AND/OR groups with NOT, one row per condition with
   the value input its field and operator need (pickers for tags, employees, departments, channels
   and groups; selects; numbers; dates; days). The definition (docs/cdp.md's JSON grammar) is kept
   in the form's hidden field and posted, debounced, to the count endpoint: the count follows the
   conditions as they change. No inline script (strict CSP): the catalog, labels and strings come
   from JSON <script type="application/json"> blocks. */
(function () {
  "use strict";

  var DEBOUNCE_MS = 350;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function readJSON(id, fallback) {
    var node = document.getElementById(id);
    if (!node) return fallback;
    try { return JSON.parse(node.textContent); } catch (e) { return fallback; }
  }

  function csrfToken(form) {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function Builder(root) {
    this.root = root;
    this.form = root.closest("form");
    this.hidden = this.form.querySelector("input[name=definition]");
    this.countUrl = root.dataset.countUrl;
    this.out = document.querySelector("[data-segment-count]");
    this.cat = readJSON("segment-catalog", { groups: [], fields: {} });
    this.labels = readJSON("segment-labels", {});
    this.t = readJSON("segment-strings", {});
    this.timer = null;
    this.seq = 0;
    var def = null;
    try { def = JSON.parse(this.hidden.value || "null"); } catch (e) { def = null; }
    if (!def || !Array.isArray(def.items)) {
      def = { op: "and", items: def && def.field ? [def] : [] };
    }
    this.tree = def;
    this.root.textContent = "";
    this.root.appendChild(this.renderGroup(this.tree, true));
    this.bind();
    this.sync();
  }

  // --- the model ------------------------------------------------------------------------------
  Builder.prototype.spec = function (field) { return this.cat.fields[field]; };

  Builder.prototype.opSpec = function (field, op) {
    var spec = this.spec(field);
    if (!spec) return null;
    for (var i = 0; i < spec.ops.length; i++) if (spec.ops[i].op === op) return spec.ops[i];
    return spec.ops[0];
  };

  Builder.prototype.defaultValue = function (kind) {
    if (kind === "picker" || kind === "choices" || kind === "texts") return [];
    if (kind === "range" || kind === "dates") return [null, null];
    if (kind === "choice") return "";
    if (kind === "none") return undefined;
    return null;
  };

  Builder.prototype.newCondition = function (field) {
    field = field || "tag";
    var op = this.spec(field).ops[0];
    var c = { field: field, op: op.op, value: this.defaultValue(op.kind) };
    if (field === "event") {
      var types = this.spec("event").event_types || [];
      c.type = types.length ? types[0][0] : "";
    }
    return c;
  };

  Builder.prototype.clean = function (node) {
    var self = this;
    var out;
    if (Array.isArray(node.items)) {
      out = { op: node.op === "or" ? "or" : "and", items: node.items.map(function (c) { return self.clean(c); }) };
    } else {
      out = { field: node.field, op: node.op };
      if (node.value !== undefined) out.value = node.value;
      if (node.type !== undefined) out.type = node.type;
      if (node.days !== undefined && node.days !== null && node.days !== "") out.days = node.days;
    }
    if (node.not) out.not = true;
    return out;
  };

  Builder.prototype.sync = function () {
    this.hidden.value = JSON.stringify(this.clean(this.tree));
    this.schedule();
  };

  // --- rendering ------------------------------------------------------------------------------
  Builder.prototype.notBox = function (node) {
    var label = el("label", "seg-not");
    var box = el("input");
    box.type = "checkbox";
    box.setAttribute("data-role", "not");
    box.checked = !!node.not;
    label.appendChild(box);
    label.appendChild(el("span", "", this.t.not || "NOT"));
    return label;
  };

  Builder.prototype.button = function (role, text, cls) {
    var b = el("button", "btn btn-ghost btn-sm " + (cls || ""), text);
    b.type = "button";
    b.setAttribute("data-role", role);
    b.setAttribute("data-testid", "seg-" + role);
    return b;
  };

  Builder.prototype.renderGroup = function (node, isRoot) {
    var self = this;
    var box = el("div", "seg-group" + (isRoot ? " seg-root" : ""));
    box.setAttribute("data-testid", isRoot ? "seg-root" : "seg-group");
    box.siyuNode = node;
    var head = el("div", "seg-group-head");
    var op = el("select", "seg-group-op");
    op.setAttribute("data-role", "group-op");
    op.setAttribute("aria-label", this.t.combine || "");
    [["and", this.t.and], ["or", this.t.or]].forEach(function (o) {
      var opt = el("option", "", o[1]);
      opt.value = o[0];
      op.appendChild(opt);
    });
    op.value = node.op === "or" ? "or" : "and";
    head.appendChild(el("span", "seg-group-label", this.t.match || ""));
    head.appendChild(op);
    head.appendChild(this.notBox(node));
    head.appendChild(this.button("add-condition", this.t.add_condition));
    head.appendChild(this.button("add-group", this.t.add_group));
    if (!isRoot) head.appendChild(this.button("remove", this.t.remove, "seg-remove"));
    box.appendChild(head);
    var items = el("div", "seg-items");
    node.items.forEach(function (child) { items.appendChild(self.renderNode(child)); });
    box.appendChild(items);
    var empty = el("p", "muted small seg-empty", this.t.empty || "");
    box.appendChild(empty);
    return box;
  };

  Builder.prototype.renderNode = function (node) {
    return Array.isArray(node.items) ? this.renderGroup(node, false) : this.renderCondition(node);
  };

  Builder.prototype.fieldSelect = function (node) {
    var self = this;
    var sel = el("select", "seg-field");
    sel.setAttribute("data-role", "field");
    sel.setAttribute("aria-label", this.t.field || "");
    var known = false;
    this.cat.groups.forEach(function (g) {
      var og = el("optgroup");
      og.label = g.label;
      g.fields.forEach(function (f) {
        var spec = self.spec(f);
        if (!spec) return;
        var opt = el("option", "", spec.label);
        opt.value = f;
        if (f === node.field) known = true;
        og.appendChild(opt);
      });
      sel.appendChild(og);
    });
    if (!known) {
      var unknown = el("option", "", this.t.unknown_field || "?");
      unknown.value = node.field || "";
      sel.appendChild(unknown);
    }
    sel.value = node.field || "";
    return sel;
  };

  Builder.prototype.renderCondition = function (node) {
    var spec = this.spec(node.field);
    var row = el("div", "seg-cond");
    row.setAttribute("data-testid", "seg-cond");
    row.siyuNode = node;
    row.appendChild(this.notBox(node));
    row.appendChild(this.fieldSelect(node));
    if (spec) {
      var ops = el("select", "seg-op");
      ops.setAttribute("data-role", "op");
      ops.setAttribute("aria-label", this.t.operator || "");
      spec.ops.forEach(function (o) {
        var opt = el("option", "", o.label);
        opt.value = o.op;
        ops.appendChild(opt);
      });
      ops.value = this.opSpec(node.field, node.op).op;
      node.op = ops.value;
      if (node.field === "event") row.appendChild(this.eventType(node, spec));
      row.appendChild(ops);
      var value = el("span", "seg-value");
      value.setAttribute("data-role", "value");
      this.fillValue(value, node);
      row.appendChild(value);
      if (spec.days) row.appendChild(this.daysInput(node));
    }
    row.appendChild(this.button("remove", "×", "seg-remove"));
    return row;
  };

  Builder.prototype.eventType = function (node, spec) {
    var sel = el("select", "seg-event-type");
    sel.setAttribute("data-role", "type");
    sel.setAttribute("aria-label", this.t.event_type || "");
    (spec.event_types || []).forEach(function (t) {
      var opt = el("option", "", t[1]);
      opt.value = t[0];
      sel.appendChild(opt);
    });
    if (node.type && !Array.prototype.some.call(sel.options, function (o) { return o.value === node.type; })) {
      var extra = el("option", "", node.type);
      extra.value = node.type;
      sel.appendChild(extra);
    }
    sel.value = node.type || (sel.options.length ? sel.options[0].value : "");
    node.type = sel.value;
    return sel;
  };

  Builder.prototype.daysInput = function (node) {
    var wrap = el("label", "seg-days");
    wrap.appendChild(el("span", "", this.t.in_last || ""));
    var input = el("input");
    input.type = "number";
    input.min = "1";
    input.step = "1";
    input.placeholder = this.t.any_time || "";
    input.setAttribute("data-role", "days");
    input.setAttribute("data-testid", "seg-days");
    if (node.days !== undefined && node.days !== null) input.value = node.days;
    wrap.appendChild(input);
    wrap.appendChild(el("span", "", this.t.days || ""));
    return wrap;
  };

  Builder.prototype.numberInput = function (value, role, extra) {
    var input = el("input");
    input.type = extra === "date" ? "date" : "number";
    if (extra !== "date") input.step = extra === "int" ? "1" : "any";
    input.setAttribute("data-role", role);
    if (value !== null && value !== undefined) input.value = value;
    return input;
  };

  Builder.prototype.fillValue = function (box, node) {
    var spec = this.spec(node.field);
    var o = this.opSpec(node.field, node.op);
    box.textContent = "";
    box.dataset.kind = o.kind;
    if (o.kind === "picker") {
      box.appendChild(this.picker(spec.source, node.value || []));
    } else if (o.kind === "choices") {
      var chosen = (node.value || []).map(String);
      var list = el("span", "seg-choices");
      (o.options || []).forEach(function (opt) {
        var label = el("label", "seg-choice");
        var box2 = el("input");
        box2.type = "checkbox";
        box2.value = String(opt[0]);
        box2.dataset.num = typeof opt[0] === "number" ? "1" : "";
        box2.setAttribute("data-role", "choice");
        box2.checked = chosen.indexOf(String(opt[0])) >= 0;
        label.appendChild(box2);
        label.appendChild(el("span", "", opt[1]));
        list.appendChild(label);
      });
      box.appendChild(list);
    } else if (o.kind === "choice") {
      var sel = el("select");
      sel.setAttribute("data-role", "choice-one");
      (o.options || []).forEach(function (opt) {
        var option = el("option", "", opt[1]);
        option.value = opt[0];
        sel.appendChild(option);
      });
      sel.value = node.value || (o.options.length ? o.options[0][0] : "");
      node.value = sel.value;
      box.appendChild(sel);
    } else if (o.kind === "range" || o.kind === "dates") {
      var v = Array.isArray(node.value) ? node.value : [null, null];
      var kind = o.kind === "dates" ? "date" : (o.int ? "int" : "");
      box.appendChild(this.numberInput(v[0], "lo", kind));
      box.appendChild(el("span", "seg-to", this.t.to || "–"));
      box.appendChild(this.numberInput(v[1], "hi", kind));
    } else if (o.kind === "number" || o.kind === "days") {
      var n = this.numberInput(node.value, "number", o.kind === "days" || o.int ? "int" : "");
      if (o.kind === "days") n.min = "0";
      box.appendChild(n);
      if (o.kind === "days") box.appendChild(el("span", "", this.t.days || ""));
    } else if (o.kind === "texts" || o.kind === "text") {
      var input = el("input");
      input.type = "text";
      input.maxLength = 500;
      input.setAttribute("data-role", o.kind);
      input.placeholder = o.kind === "texts" ? (this.t.texts_hint || "") : "";
      input.value = Array.isArray(node.value) ? node.value.join("，") : (node.value || "");
      box.appendChild(input);
    }
  };

  Builder.prototype.picker = function (source, values) {
    var tpl = document.querySelector("template[data-picker-template='" + source + "']");
    var wrap = el("span", "seg-picker");
    if (!tpl) return wrap;
    wrap.appendChild(tpl.content.cloneNode(true));
    var root = wrap.querySelector("[data-picker]");
    var chips = root.querySelector("[data-picker-chips]");
    var names = this.labels[source] || {};
    values.forEach(function (v) {
      var it = names[String(v)] || { label: String(v), sub: "" };
      var chip = el("span", "picker-chip");
      chip.dataset.value = String(v);
      chip.appendChild(el("span", "picker-chip-label", it.label));
      if (it.sub) chip.appendChild(el("span", "picker-chip-sub", it.sub));
      var x = el("button", "picker-chip-x", "×");
      x.type = "button";
      x.setAttribute("data-picker-remove", "");
      chip.appendChild(x);
      var hidden = el("input");
      hidden.type = "hidden";
      hidden.name = root.dataset.name;
      hidden.value = String(v);
      chip.appendChild(hidden);
      chips.appendChild(chip);
    });
    return wrap;
  };

  // pickers.js starts the pickers of a fragment on htmx:afterSettle: a new row is such a fragment
  Builder.prototype.startPickers = function (fragment) {
    fragment.dispatchEvent(new CustomEvent("htmx:afterSettle", { bubbles: true }));
  };

  // --- reading the inputs back ------------------------------------------------------------------
  function num(text, integer) {
    if (text === "" || text === null || text === undefined) return null;
    var n = integer ? parseInt(text, 10) : parseFloat(text);
    return isNaN(n) ? null : n;
  }

  Builder.prototype.readValue = function (row, node) {
    var o = this.opSpec(node.field, node.op);
    var spec = this.spec(node.field);
    var box = row.querySelector(":scope > [data-role=value]");
    if (!box || !o) return;
    if (o.kind === "picker") {
      var src = spec.source;
      var names = (this.labels[src] = this.labels[src] || {});
      node.value = Array.prototype.map.call(box.querySelectorAll(".picker-chip[data-value]"), function (chip) {
        var label = chip.querySelector(".picker-chip-label");
        var sub = chip.querySelector(".picker-chip-sub");
        names[chip.dataset.value] = { label: label ? label.textContent : chip.dataset.value, sub: sub ? sub.textContent : "" };
        return spec.int ? parseInt(chip.dataset.value, 10) : chip.dataset.value;
      });
    } else if (o.kind === "choices") {
      node.value = Array.prototype.filter.call(box.querySelectorAll("[data-role=choice]"), function (c) { return c.checked; })
        .map(function (c) { return c.dataset.num ? parseInt(c.value, 10) : c.value; });
    } else if (o.kind === "choice") {
      node.value = box.querySelector("select").value;
    } else if (o.kind === "range" || o.kind === "dates") {
      var lo = box.querySelector("[data-role=lo]").value;
      var hi = box.querySelector("[data-role=hi]").value;
      node.value = o.kind === "dates" ? [lo || null, hi || null] : [num(lo, o.int), num(hi, o.int)];
    } else if (o.kind === "number" || o.kind === "days") {
      node.value = num(box.querySelector("[data-role=number]").value, o.kind === "days" || o.int);
    } else if (o.kind === "texts") {
      node.value = box.querySelector("input").value.split(/[,，、;；\n]+/).map(function (s) { return s.trim(); })
        .filter(function (s) { return s; });
    } else if (o.kind === "text") {
      node.value = box.querySelector("input").value;
    }
  };

  Builder.prototype.onChange = function (target) {
    var role = target.getAttribute("data-role");
    var holder = target.closest(".seg-cond, .seg-group");
    if (!holder) return;
    var node = holder.siyuNode;
    if (role === "not") {
      node.not = target.checked;
    } else if (role === "group-op") {
      node.op = target.value;
    } else if (role === "field") {
      var fresh = this.newCondition(target.value);
      Object.keys(node).forEach(function (k) { delete node[k]; });
      Object.keys(fresh).forEach(function (k) { node[k] = fresh[k]; });
      var row = this.renderCondition(node);
      holder.replaceWith(row);
      this.startPickers(row);
    } else if (role === "op") {
      var before = this.opSpec(node.field, node.op).kind;
      node.op = target.value;
      var after = this.opSpec(node.field, node.op);
      var box = holder.querySelector(":scope > [data-role=value]");
      if (before !== after.kind || after.kind === "choices" || after.kind === "choice") {
        node.value = this.defaultValue(after.kind);
        this.fillValue(box, node);
        this.startPickers(box);
      }
    } else if (role === "type") {
      node.type = target.value;
    } else if (role === "days") {
      var d = num(target.value, true);
      node.days = d === null ? undefined : d;
    } else {
      this.readValue(holder, node);
    }
    this.sync();
  };

  Builder.prototype.onClick = function (button) {
    var role = button.getAttribute("data-role");
    var holder = button.closest(".seg-cond, .seg-group");
    if (!holder) return;
    var node = holder.siyuNode;
    if (role === "add-condition" || role === "add-group") {
      var child = role === "add-group" ? { op: "or", items: [this.newCondition()] } : this.newCondition();
      node.items.push(child);
      var view = this.renderNode(child);
      holder.querySelector(":scope > .seg-items").appendChild(view);
      this.startPickers(view);
      var focus = view.querySelector("select[data-role=field]");
      if (focus) focus.focus();
    } else if (role === "remove") {
      var parentView = holder.parentElement.closest(".seg-group");
      if (!parentView) return;
      var parent = parentView.siyuNode;
      var i = parent.items.indexOf(node);
      if (i >= 0) parent.items.splice(i, 1);
      holder.remove();
    } else {
      return;
    }
    this.sync();
  };

  Builder.prototype.bind = function () {
    var self = this;
    // a picker's chip added or removed fires "change" on its hidden input (or the picker itself);
    // the picker's search box keeps its own change events (pickers.js stops them)
    this.root.addEventListener("change", function (e) {
      var t = e.target;
      if (t.matches("[data-picker-search]")) return;
      self.onChange(t.closest("[data-role]") || t);
    });
    this.root.addEventListener("input", function (e) {
      var t = e.target;
      if (t.matches("input[type=number], input[type=text], input[type=date]") && !t.matches("[data-picker-search]")) {
        self.onChange(t);
      }
    });
    this.root.addEventListener("click", function (e) {
      var b = e.target.closest("button[data-role]");
      if (b && self.root.contains(b)) { e.preventDefault(); self.onClick(b); }
    });
    this.form.addEventListener("submit", function () { self.hidden.value = JSON.stringify(self.clean(self.tree)); });
  };

  // --- the live count -----------------------------------------------------------------------------
  Builder.prototype.schedule = function () {
    var self = this;
    clearTimeout(this.timer);
    if (this.out) this.out.setAttribute("aria-busy", "true");
    this.timer = setTimeout(function () { self.count(); }, DEBOUNCE_MS);
  };

  Builder.prototype.count = function () {
    var self = this;
    if (!this.countUrl || !this.out) return;
    var seq = ++this.seq;
    var body = new FormData();
    body.append("definition", this.hidden.value);
    fetch(this.countUrl, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(this.form), Accept: "application/json" },
    })
      .then(function (r) { return r.json().catch(function () { return { ok: false, error: self.t.failed }; }); })
      .then(function (data) { if (seq === self.seq) self.show(data); })
      .catch(function () { if (seq === self.seq) self.show({ ok: false, error: self.t.failed }); });
  };

  Builder.prototype.show = function (data) {
    var out = this.out;
    out.removeAttribute("aria-busy");
    out.textContent = "";
    if (!data.ok) {
      var err = el("span", "text-danger", data.error || this.t.failed);
      err.setAttribute("data-testid", "segment-count-error");
      out.appendChild(err);
      out.dataset.state = "error";
      return;
    }
    out.dataset.state = "ok";
    var persons = el("strong", "", String(data.persons));
    persons.setAttribute("data-testid", "segment-count-persons");
    var customers = el("strong", "", String(data.customers));
    customers.setAttribute("data-testid", "segment-count-customers");
    out.appendChild(document.createTextNode(this.t.about + " "));
    out.appendChild(persons);
    out.appendChild(document.createTextNode(" " + this.t.persons + this.t.of_which + " "));
    out.appendChild(customers);
    out.appendChild(document.createTextNode(" " + this.t.with_wecom + " "));
    var took = el("span", "muted small", this.t.took.replace("%s", String(data.ms)));
    took.setAttribute("data-testid", "segment-count-ms");
    out.appendChild(took);
  };

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-segment-builder]").forEach(function (root) {
      if (root.dataset.ready) return;
      root.dataset.ready = "1";
      var b = new Builder(root);
      b.startPickers(root);
    });
  });
})();
