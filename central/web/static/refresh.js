// Reload the page every 60 s so the fleet stays current, unless someone is filling in a form
// (a field has focus or was changed): their typing is never thrown away.  Pages that show a
// secret once, or answer a form, say data-refresh="off" on <body> and are never reloaded.
(function () {
  "use strict";
  // this page is loaded: whatever comes next (a click) is use again
  document.cookie = "tillsyn_refresh=; path=/; max-age=0; samesite=strict";
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
      // a reload nobody asked for is not use: the centre does not count it towards keeping the
      // session alive, so a page left open still logs out after the idle time
      document.cookie = "tillsyn_refresh=1; path=/; max-age=10; samesite=strict" +
        (window.location.protocol === "https:" ? "; secure" : "");
      window.location.reload();
    }
  }, 60000);
})();
