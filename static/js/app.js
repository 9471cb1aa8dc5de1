/* Every page: refusals (4xx) carry the message that says why, so htmx swaps them in like
   successes; server errors (5xx) are not swapped. */
htmx.config.responseHandling = [
  { code: "204", swap: false },
  { code: "[23]..", swap: true },
  { code: "4..", swap: true, error: false },
  { code: "...", swap: false, error: true },
];
