// Runs first: records every request the page's Content-Security-Policy blocks, so that anyone
// (and the browser test) can see from the page itself that nothing left it.
(function () {
  "use strict";
  var blocked = [];
  window.entrezGraphBlocked = blocked;
  document.addEventListener("securitypolicyviolation", function (event) {
    blocked.push(event.violatedDirective + " " + event.blockedURI);
    if (document.body) {
      document.body.dataset.blocked = String(blocked.length);
      document.body.dataset.blockedUris = blocked.join(" | ");
    }
  });
})();
