// Progressive enhancement only: every page works without this file.
// "Link" on a message copies its absolute permalink; without JavaScript (or
// without clipboard access) it is a plain link to the message anchor.
"use strict";
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
