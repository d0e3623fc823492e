// Reload the page every 60 s so the fleet stays current, unless someone is filling in a form
// (a field has focus or was changed): their typing is never thrown away.  Pages that show a
// secret once, or answer a form, say data-refresh="off" on <body> and are never reloaded.
(function () {
  "use strict";
  if (document.body && document.body.getAttribute("data-refresh") === "off") { return; }
  var edited = false;
  document.addEventListener("input", function () { edited = true; });
  function busy() {
    var active = document.activeElement;
    var tag = active ? active.tagName : "";
    return edited || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }
  setInterval(function () {
    if (!busy() && document.visibilityState !== "hidden") {
      window.location.reload();
    }
  }, 60000);
})();
