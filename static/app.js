// Progressive enhancement only: every page works without this file.
// - "Link" on a message, and "Share", copy an absolute link.
// - A #m-<id> permalink to a message outside the shown window reloads the
//   window that holds it (?at=<id>).
// - Keyboard triage: j/k, Enter, [ ], /, g l, r, ? (see the help overlay);
//   on a conversation j/k move between messages and n/N between find matches.
// - The address bar drops empty fields and refresh=1 once a page has used them.
"use strict";

(function () {
  function isTyping(target) {
    if (!target) { return false; }
    var tag = target.tagName;
    return target.isContentEditable || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  // Copy a message permalink.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-copy-link], a[data-copy-share]");
    if (!link || !navigator.clipboard || event.ctrlKey || event.metaKey || event.shiftKey) {
      return;
    }
    event.preventDefault();
    var url = new URL(link.getAttribute("href"), window.location.href).href;
    navigator.clipboard.writeText(url).then(function () {
      // Point the address bar at the message, keeping find and the rest.
      var here = new URL(window.location.href);
      here.hash = new URL(url).hash;
      history.replaceState(null, "", here.href);
      var note = document.createElement("span");
      note.className = "copied";
      note.setAttribute("role", "status");
      note.textContent = "Link copied";
      link.after(note);
      setTimeout(function () { note.remove(); }, 2000);
    }, function () {
      window.location.href = url;
    });
  });

  // A message permalink whose message is in another window of a long
  // conversation: ask the server for the window that holds it.
  function followMessageHash() {
    var hash = decodeURIComponent(window.location.hash.slice(1));
    if (hash.indexOf("m-") !== 0 || document.getElementById(hash)) { return; }
    if (!document.querySelector("ol.messages")) { return; }
    var url = new URL(window.location.href);
    if (url.searchParams.get("at") === hash.slice(2)) { return; }
    url.searchParams.set("at", hash.slice(2));
    url.searchParams.delete("start");
    window.location.replace(url.href);
  }
  window.addEventListener("hashchange", followMessageHash);
  document.addEventListener("DOMContentLoaded", followMessageHash);

  // Empty fields and a used refresh=1 only clutter a URL that gets shared
  // (and reloading would refresh again): drop them from the address bar,
  // and leave empty fields out of the forms' own GET requests.
  document.addEventListener("DOMContentLoaded", function () {
    var url = new URL(window.location.href);
    var drop = [];
    url.searchParams.forEach(function (value, key) {
      // An empty from= still means "came from the default list".
      if ((value === "" && key !== "from") || (key === "refresh" && value === "1")) { drop.push(key); }
    });
    if (drop.length) {
      drop.forEach(function (key) { url.searchParams.delete(key); });
      history.replaceState(null, "", url.href);
    }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || (form.method || "get").toLowerCase() !== "get") { return; }
    Array.prototype.forEach.call(form.elements, function (field) {
      if (field.name && field.name !== "from" && field.value === "" && !field.disabled) { field.disabled = true; }
    });
    // Re-enable after the navigation starts, so Back shows the form intact.
    setTimeout(function () {
      Array.prototype.forEach.call(form.elements, function (field) { field.disabled = false; });
    }, 0);
  });

  // "g l" and "Back to the list" come back with the row they left selected.
  var RETURN_KEY = "airisk-return-row";
  document.addEventListener("DOMContentLoaded", function () {
    if (document.querySelector("a[data-nav=list]")) {
      // A conversation page: remember it for the list we return to.
      try { sessionStorage.setItem(RETURN_KEY, window.location.pathname); } catch (e) { /* private mode */ }
      return;
    }
    var path;
    try { path = sessionStorage.getItem(RETURN_KEY); } catch (e) { return; }
    if (!path || !document.querySelector("tr[data-row]")) { return; }
    rows().some(function (row, index) {
      var link = row.querySelector("a[href]");
      if (link && new URL(link.href).pathname === path) { select(index); return true; }
      return false;
    });
  });

  // Keep a shared link's #m-<id> through sign-in: the server never sees the
  // fragment, but the redirect after the POST inherits the one on the form's
  // action URL.
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form.token-form");
    if (form && window.location.hash) {
      form.action = form.action.split("#")[0] + window.location.hash;
    }
  });

  // Help overlay.
  function toggleHelp(show) {
    var help = document.getElementById("keyboard-help");
    if (!help) { return; }
    var open = show === undefined ? !help.classList.contains("open") : show;
    help.classList.toggle("open", open);
    if (open) { help.setAttribute("tabindex", "-1"); help.focus(); }
  }
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-help-toggle]")) {
      event.preventDefault();
      toggleHelp();
    }
  });

  // Keyboard triage.
  var selected = -1;
  var pendingG = false;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("tr[data-row]")); }
  function select(index) {
    var all = rows();
    if (!all.length) { return; }
    selected = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (row, i) { row.classList.toggle("selected", i === selected); });
    all[selected].scrollIntoView({ block: "nearest" });
    var link = all[selected].querySelector("a[href]");
    if (link) { link.focus({ preventScroll: true }); }
  }
  // On a conversation: j/k between messages, n/N between find matches.
  function messages() { return Array.prototype.slice.call(document.querySelectorAll("li.message[id^='m-']")); }
  function step(items, current, delta) {
    var index = items.indexOf(current);
    if (index < 0) { return delta > 0 ? 0 : items.length - 1; }
    return (index + delta + items.length) % items.length;
  }
  function moveMessage(delta) {
    var all = messages();
    if (!all.length) { return false; }
    var current = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest("li.message") : null;
    var index = current ? all.indexOf(current) + delta : (delta > 0 ? 0 : all.length - 1);
    all[Math.max(0, Math.min(index, all.length - 1))].focus();
    return true;
  }
  function moveMatch(delta) {
    var marks = Array.prototype.slice.call(document.querySelectorAll("ol.messages mark"));
    if (!marks.length) { return false; }
    var current = document.querySelector("mark.current");
    var next = marks[step(marks, current, delta)];
    if (current) { current.classList.remove("current"); }
    next.classList.add("current");
    next.scrollIntoView({ block: "center" });
    return true;
  }

  function follow(selector) {
    var link = document.querySelector(selector);
    if (link) { window.location.href = link.href; }
    return Boolean(link);
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && isTyping(event.target)) {
      // Leave the field, so the shortcuts work again.
      event.target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) { return; }
    var key = event.key;
    if (pendingG) {
      pendingG = false;
      if (key === "l") { event.preventDefault(); follow("a[data-nav=list]") || follow("a[data-home]"); }
      return;
    }
    if (key === "Escape") { toggleHelp(false); return; }
    if (key === "?") { event.preventDefault(); toggleHelp(); return; }
    if (key === "j" || key === "k") {
      event.preventDefault();
      if (!rows().length) { moveMessage(key === "j" ? 1 : -1); } else { select(selected + (key === "j" ? 1 : -1)); }
      return;
    }
    if (key === "n" || key === "N") {
      if (moveMatch(key === "n" ? 1 : -1)) { event.preventDefault(); }
      return;
    }
    if (key === "Enter" && selected >= 0 && !(event.target.closest && event.target.closest("a, button"))) {
      var link = rows()[selected] && rows()[selected].querySelector("a[href]");
      if (link) { event.preventDefault(); window.location.href = link.href; }
      return;
    }
    if (key === "[") { event.preventDefault(); follow("a[data-nav=prev]"); return; }
    if (key === "]") { event.preventDefault(); follow("a[data-nav=next]"); return; }
    if (key === "/") {
      var search = document.querySelector("[data-search]");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
      return;
    }
    if (key === "r") { event.preventDefault(); follow("a[data-key=r]"); return; }
    if (key === "g") { pendingG = true; setTimeout(function () { pendingG = false; }, 1500); }
  });
})();
