/* Every page: refusals (4xx) carry the message that says why, so htmx swaps them in like
   successes; server errors (5xx) are not swapped. */
htmx.config.responseHandling = [
  { code: "204", swap: false },
  { code: "[23]..", swap: true },
  { code: "4..", swap: true, error: false },
  { code: "...", swap: false, error: true },
];

/* A move form (the page's, the board's dialog) asks for a reason, and why it is dead, only
   when the chosen stage (an <option> or a checked radio, carrying data-needs-reason)
   needs them. Without JavaScript every field shows and the server decides. */
function showReasonFields(form, chosen) {
  var reason = form.querySelector(".reason-field");
  var dead = form.querySelector(".dead-field");
  if (!chosen || !reason || !dead) return;
  reason.hidden = chosen.dataset.needsReason !== "true";
  reason.querySelector("textarea").required = !reason.hidden;
  dead.hidden = chosen.value !== "dead";
  dead.querySelector("select").required = !dead.hidden;
}
function showPageReasonFields(form) {
  showReasonFields(form, form.querySelector("select[name=stage]").selectedOptions[0]);
}
document.addEventListener("change", function (event) {
  if (event.target.matches(".page-move-form select[name=stage]")) {
    showPageReasonFields(event.target.form);
  }
});
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".page-move-form").forEach(showPageReasonFields);
});

/* Selects that act at once (the language switch): no inline handler under the content
   security policy. */
document.addEventListener("change", function (event) {
  if (event.target.matches("select[data-submit-on-change]")) {
    event.target.form.requestSubmit();
  }
});
