/* Siyu pickers (siyu.core.pickers): chips for the chosen items, a debounced server-side search,
   results picked with the keyboard or the mouse, hidden inputs carrying the values, and an
   optional department tree (filter the search, or pick a department). No inline JS (CSP). */
(function () {
  "use strict";

  var DEBOUNCE_MS = 200;
  var counter = 0;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function Picker(root) {
    this.root = root;
    this.name = root.dataset.name;
    this.multiple = root.dataset.multiple === "1";
    this.url = root.dataset.searchUrl;
    this.treeUrl = root.dataset.treeUrl || "";
    this.treeMode = root.dataset.treeMode || "";
    this.chips = root.querySelector("[data-picker-chips]");
    this.input = root.querySelector("[data-picker-search]");
    this.results = root.querySelector("[data-picker-results]");
    this.tree = root.querySelector("[data-picker-tree]");
    this.filter = root.querySelector("[data-picker-filter]");
    this.dept = "";
    this.items = [];
    this.active = -1;
    this.timer = null;
    this.seq = 0;
    this.treeLoaded = false;
    this.uid = "picker-" + (++counter);
    this.results.id = this.uid + "-results";
    this.input.setAttribute("aria-controls", this.results.id);
    this.bind();
  }

  Picker.prototype.values = function () {
    return Array.prototype.map.call(this.chips.querySelectorAll("[data-value]"), function (c) { return c.dataset.value; });
  };

  Picker.prototype.changed = function () {
    var hidden = this.chips.querySelector("input[type=hidden]");
    var target = hidden || this.root;
    target.dispatchEvent(new Event("change", { bubbles: true }));
  };

  Picker.prototype.addChip = function (it) {
    if (this.values().indexOf(it.value) >= 0) return;
    if (!this.multiple) this.chips.textContent = "";
    var chip = el("span", "picker-chip");
    chip.dataset.value = it.value;
    chip.appendChild(el("span", "picker-chip-label", it.label));
    if (it.sub || it.group) chip.appendChild(el("span", "picker-chip-sub", it.sub || it.group));
    var x = el("button", "picker-chip-x", "×");
    x.type = "button";
    x.setAttribute("data-picker-remove", "");
    x.setAttribute("aria-label", "×");
    chip.appendChild(x);
    var hidden = el("input");
    hidden.type = "hidden";
    hidden.name = this.name;
    hidden.value = it.value;
    chip.appendChild(hidden);
    this.chips.appendChild(chip);
    this.changed();
  };

  Picker.prototype.removeChip = function (chip) {
    chip.remove();
    this.changed();
  };

  Picker.prototype.search = function () {
    var self = this;
    var seq = ++this.seq;
    var url = this.url + (this.url.indexOf("?") >= 0 ? "&" : "?") + "q=" + encodeURIComponent(this.input.value.trim());
    if (this.dept) url += "&dept=" + encodeURIComponent(this.dept);
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { items: [], more: false }; })
      .then(function (data) { if (seq === self.seq) self.show(data.items || [], !!data.more); })
      .catch(function () { /* the next keystroke retries */ });
  };

  Picker.prototype.show = function (items, more) {
    var self = this;
    this.stale = false;
    this.items = items;
    this.active = items.length ? 0 : -1;
    this.results.textContent = "";
    var chosen = this.values();
    var group = null;
    items.forEach(function (it, i) {
      if (it.group && it.group !== group) {
        group = it.group;
        var h = el("li", "picker-group", it.group);
        h.setAttribute("role", "presentation");
        self.results.appendChild(h);
      }
      var li = el("li", "picker-option");
      li.setAttribute("role", "option");
      li.dataset.index = String(i);
      li.id = self.uid + "-opt-" + i;
      li.dataset.value = it.value;
      li.appendChild(el("span", "picker-option-label", it.label));
      if (it.sub) li.appendChild(el("span", "picker-option-sub", it.sub));
      if (chosen.indexOf(it.value) >= 0) li.classList.add("chosen");
      self.results.appendChild(li);
    });
    if (!items.length) self.results.appendChild(el("li", "picker-empty", this.root.dataset.emptyText || "—"));
    if (more) self.results.appendChild(el("li", "picker-empty", this.root.dataset.moreText || "…"));
    this.results.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.highlight();
  };

  Picker.prototype.close = function () {
    this.results.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
  };

  Picker.prototype.highlight = function () {
    var self = this;
    if (this.active >= 0) this.input.setAttribute("aria-activedescendant", this.uid + "-opt-" + this.active);
    else this.input.removeAttribute("aria-activedescendant");
    this.results.querySelectorAll(".picker-option").forEach(function (li) {
      var on = parseInt(li.dataset.index, 10) === self.active;
      li.classList.toggle("active", on);
      li.setAttribute("aria-selected", on ? "true" : "false");
      if (on && li.scrollIntoView) li.scrollIntoView({ block: "nearest" });
    });
  };

  Picker.prototype.pick = function (i) {
    var it = this.items[i];
    if (!it) return;
    this.addChip(it);
    // the search box empties after every pick, so the next name typed is a new search (a
    // newcomer typing a second name after the first found nothing: the box still held the first)
    this.input.value = "";
    this.close();
    if (this.multiple && document.activeElement !== this.input) this.input.focus();
  };

  Picker.prototype.schedule = function () {
    var self = this;
    clearTimeout(this.timer);
    this.timer = setTimeout(function () { self.search(); }, DEBOUNCE_MS);
  };

  // --- the department tree ------------------------------------------------------------------
  Picker.prototype.toggleTree = function (button) {
    var open = this.tree.hidden;
    this.tree.hidden = !open;
    button.setAttribute("aria-expanded", open ? "true" : "false");
    if (open && !this.treeLoaded) this.loadTree();
  };

  Picker.prototype.loadTree = function () {
    var self = this;
    this.treeLoaded = true;
    fetch(this.treeUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { nodes: [] }; })
      .then(function (data) { self.drawTree(data.nodes || []); })
      .catch(function () { self.treeLoaded = false; });
  };

  Picker.prototype.drawTree = function (nodes) {
    var byParent = {};
    var ids = {};
    nodes.forEach(function (n) { ids[n.id] = true; });
    nodes.forEach(function (n) {
      var p = n.parent && ids[n.parent] ? n.parent : "";
      (byParent[p] = byParent[p] || []).push(n);
    });
    var self = this;
    function branch(parent, depth) {
      var ul = el("ul", "picker-tree-list");
      ul.setAttribute("role", depth ? "group" : "tree");
      (byParent[parent] || []).forEach(function (n) {
        var li = el("li", "picker-tree-node");
        li.setAttribute("role", "treeitem");
        var kids = byParent[n.id] || [];
        var tog = el("button", "picker-tree-twisty", kids.length ? (depth < 1 ? "▾" : "▸") : "");
        tog.type = "button";
        if (kids.length) tog.setAttribute("data-picker-tree-expand", "");
        else tog.disabled = true;
        li.appendChild(tog);
        var name = el("button", "picker-tree-name", n.name);
        name.type = "button";
        name.dataset.dept = String(n.id);
        name.dataset.label = n.name;
        name.dataset.sub = n.sub || "";
        name.setAttribute("data-picker-tree-pick", "");
        li.appendChild(name);
        if (kids.length) {
          var sub = branch(n.id, depth + 1);
          sub.hidden = depth >= 1;
          li.appendChild(sub);
          li.setAttribute("aria-expanded", depth < 1 ? "true" : "false");
        }
        ul.appendChild(li);
      });
      return ul;
    }
    this.tree.textContent = "";
    this.tree.appendChild(branch("", 0));
  };

  Picker.prototype.treeClick = function (target) {
    var expand = target.closest("[data-picker-tree-expand]");
    if (expand) {
      var node = expand.closest(".picker-tree-node");
      var sub = node.querySelector(":scope > ul");
      if (sub) {
        sub.hidden = !sub.hidden;
        expand.textContent = sub.hidden ? "▸" : "▾";
        node.setAttribute("aria-expanded", sub.hidden ? "false" : "true");
      }
      return;
    }
    var pick = target.closest("[data-picker-tree-pick]");
    if (!pick) return;
    if (this.treeMode === "pick") {
      this.addChip({ value: pick.dataset.dept, label: pick.dataset.label, sub: pick.dataset.sub || "" });
      return;
    }
    this.dept = pick.dataset.dept;
    this.filter.hidden = false;
    this.filter.querySelector("[data-picker-filter-label]").textContent = pick.dataset.label;
    this.tree.querySelectorAll(".picker-tree-name.current").forEach(function (b) { b.classList.remove("current"); });
    pick.classList.add("current");
    this.search();
  };

  Picker.prototype.bind = function () {
    var self = this;
    this.input.addEventListener("input", function () {
      // the list on screen answers the previous text: nothing in it is picked by Enter until the new answer
      self.stale = true;
      self.active = -1;
      self.highlight();
      self.schedule();
    });
    this.input.addEventListener("focus", function () { if (self.results.hidden) self.search(); });
    this.input.addEventListener("keydown", function (e) {
      if (e.key === "ArrowDown") {
        e.preventDefault();
        if (self.results.hidden) { self.search(); return; }
        if (!self.stale && self.active < self.items.length - 1) { self.active++; self.highlight(); }
      } else if (e.key === "ArrowUp") {
        e.preventDefault();
        if (self.active > 0) { self.active--; self.highlight(); }
      } else if (e.key === "Enter") {
        if (!self.results.hidden && !self.stale && self.active >= 0) { e.preventDefault(); self.pick(self.active); }
        else e.preventDefault(); // Enter in a picker never submits the form
      } else if (e.key === "Escape") {
        self.close();
      } else if (e.key === "Backspace" && !self.input.value) {
        var chips = self.chips.querySelectorAll(".picker-chip");
        if (chips.length) self.removeChip(chips[chips.length - 1]);
      }
    });
    // the search box's own change event must not reach the form (htmx filters listen to "change")
    this.input.addEventListener("change", function (e) { e.stopPropagation(); });
    // mousedown, not click: it comes before the input's blur closes the list
    this.results.addEventListener("mousedown", function (e) {
      var li = e.target.closest(".picker-option");
      if (!li || self.stale) { e.preventDefault(); return; }
      e.preventDefault();
      self.pick(parseInt(li.dataset.index, 10));
    });
    this.input.addEventListener("blur", function () { setTimeout(function () { self.close(); }, 150); });
    this.root.addEventListener("click", function (e) {
      var x = e.target.closest("[data-picker-remove]");
      if (x) { e.preventDefault(); self.removeChip(x.closest(".picker-chip")); return; }
      var t = e.target.closest("[data-picker-tree-toggle]");
      if (t) { e.preventDefault(); self.toggleTree(t); return; }
      if (e.target.closest("[data-picker-filter-clear]")) {
        e.preventDefault();
        self.dept = "";
        self.filter.hidden = true;
        if (self.tree) self.tree.querySelectorAll(".current").forEach(function (b) { b.classList.remove("current"); });
        self.search();
        return;
      }
      if (self.tree && e.target.closest("[data-picker-tree]")) { e.preventDefault(); self.treeClick(e.target); }
    });
  };

  function init(root) {
    (root || document).querySelectorAll("[data-picker]").forEach(function (p) {
      if (p.dataset.pickerReady) return;
      p.dataset.pickerReady = "1";
      p.siyuPicker = new Picker(p);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (event) { init(event.target); });
})();
