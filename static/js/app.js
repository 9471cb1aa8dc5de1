/* Every page: refusals (4xx) carry the message that says why, so htmx swaps them in like
   successes; server errors (5xx) are not swapped. */
htmx.config.responseHandling = [
  { code: "204", swap: false },
  { code: "[23]..", swap: true },
  { code: "4..", swap: true, error: false },
  { code: "...", swap: false, error: true },
];

/* The opportunity page's move form asks for a reason, and why it is dead, only when the
   chosen move needs them. Without JavaScript every field shows and the server decides. */
function showReasonFields(form) {
  var option = form.querySelector("select[name=stage]").selectedOptions[0];
  var reason = form.querySelector(".reason-field");
  var dead = form.querySelector(".dead-field");
  if (!option || !reason || !dead) return;
  reason.hidden = option.dataset.needsReason !== "true";
  reason.querySelector("textarea").required = !reason.hidden;
  dead.hidden = option.value !== "dead";
  dead.querySelector("select").required = !dead.hidden;
}
document.addEventListener("change", function (event) {
  if (event.target.matches(".page-move-form select[name=stage]")) {
    showReasonFields(event.target.form);
  }
});
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".page-move-form").forEach(showReasonFields);
});
