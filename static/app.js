// Progressive enhancement only: every page works without this file.
// - "Link" on a message copies its absolute permalink.
// - A #m-<id> permalink to a message outside the shown window reloads the
//   window that holds it (?at=<id>).
// - Keyboard triage: j/k, Enter, [ ], /, g l, r, ? (see the help overlay).
"use strict";

(function () {
  function isTyping(target) {
    if (!target) { return false; }
    var tag = target.tagName;
    return target.isContentEditable || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  // Copy a message permalink.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-copy-link]");
    if (!link || !navigator.clipboard || event.ctrlKey || event.metaKey || event.shiftKey) {
      return;
    }
    event.preventDefault();
    var url = new URL(link.getAttribute("href"), window.location.href).href;
    navigator.clipboard.writeText(url).then(function () {
      history.replaceState(null, "", url);
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
    if (key === "j") { event.preventDefault(); select(selected + 1); return; }
    if (key === "k") { event.preventDefault(); select(selected - 1); return; }
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
