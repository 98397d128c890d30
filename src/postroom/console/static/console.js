// The console's own script, served from /static like htmx: the Content-Security-Policy
// allows no inline script, so behaviour that pages used to carry inline lives here.
(function () {
  "use strict";

  // A form with data-confirm="question" submits only when the question is answered OK.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form instanceof HTMLFormElement ? form.getAttribute("data-confirm") : null;
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // A secret shown once (a new API key, a webhook secret) is selected whole on focus, ready
  // to copy.
  document.addEventListener("focusin", function (event) {
    var field = event.target;
    if (field instanceof HTMLInputElement && field.hasAttribute("data-select-on-focus")) {
      field.select();
    }
  });

  // The review form's time zone starts at the browser's own, when the list has it. The form
  // may arrive later, swapped in by htmx, hence htmx:load as well as the first load.
  function chooseZone(root) {
    var select = root && root.querySelector ? root.querySelector("select#zone") : null;
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (!select || select.dataset.zoneChosen || !zone) {
      return;
    }
    select.dataset.zoneChosen = "yes";
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].value === zone) {
        select.value = zone;
        return;
      }
    }
  }
  document.addEventListener("htmx:load", function (event) { chooseZone(event.target); });
  document.addEventListener("DOMContentLoaded", function () { chooseZone(document); });
})();
