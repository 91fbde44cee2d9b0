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

// "Copy" next to a token shown once: the clipboard API, no inline handler.
(function () {
  var buttons = document.querySelectorAll("button[data-copy]");
  Array.prototype.forEach.call(buttons, function (button) {
    button.addEventListener("click", function () {
      var field = document.getElementById(button.getAttribute("data-copy"));
      field.select();
      if (navigator.clipboard) { navigator.clipboard.writeText(field.value); }
      button.textContent = "Copied";
    });
  });
})();
