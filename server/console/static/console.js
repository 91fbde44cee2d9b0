// Live queue: reload a page that declares data-refresh (seconds) while no field has the focus.
// No inline script anywhere: the Content-Security-Policy allows scripts from 'self' only.
"use strict";
(function () {
  var box = document.querySelector("[data-refresh]");
  if (!box) { return; }
  var seconds = parseInt(box.getAttribute("data-refresh"), 10) || 20;
  setInterval(function () {
    var active = document.activeElement;
    var typing = active && (active.tagName === "INPUT" || active.tagName === "TEXTAREA");
    if (!typing) { window.location.reload(); }
  }, seconds * 1000);
})();
