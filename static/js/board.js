/* The board: SortableJS moves cards in the page, the server decides every move (htmx). */
(function () {
  "use strict";

  var pendingDrop = null; // {card, from, index} while a dropped card awaits the server
  var dialogCardId = null; // the card the dialog is about, to give it focus back
  var undoTimer = null;

  function dialog() { return document.getElementById("move-dialog"); }
  function board() { return document.querySelector(".board-page"); }
  function moveUrl(card) {
    return board().dataset.moveUrl.replace("/0/", "/" + card.dataset.opportunityId + "/");
  }
  function filters() { return document.querySelector(".board").dataset.filters || ""; }

  function announce(text) {
    var region = document.getElementById("announcer");
    if (region) { region.textContent = ""; region.textContent = text; }
  }

  // A warning above the board (a conflict, a failed request): an alert, so screen readers
  // say it at once; successes are said politely through the announcer instead.
  function warn(text) {
    var line = document.createElement("div");
    line.className = "notice-line notice-warning";
    line.setAttribute("role", "alert");
    line.textContent = text;
    document.getElementById("board-notice").replaceChildren(line);
  }

  // In the refusal dialog, keyboard focus goes to the next thing to do: the first missing
  // criterion's field, or Retry once nothing is missing.
  function focusNextStep() {
    var d = dialog();
    if (!d.open) return;
    var ready = d.querySelector(".retry-summary .ready");
    var next = ready ? d.querySelector("[data-retry]") : (
      d.querySelector(".stage-checklist[open] .criterion.unmet input:not([type=hidden])") ||
      d.querySelector(".stage-checklist[open] .criterion.unmet a") ||
      d.querySelector(".contacts[open] select") ||
      d.querySelector("[data-retry]") ||
      d.querySelector("[data-close-dialog]"));
    if (next) next.focus();
  }

  function revert() {
    if (!pendingDrop) return;
    var list = pendingDrop.from;
    var before = list.children[pendingDrop.index] || null;
    list.insertBefore(pendingDrop.card, before);
    pendingDrop.card.focus();
    pendingDrop = null;
  }

  function openMenu(card, stage) {
    dialogCardId = card.dataset.opportunityId;
    var url = moveUrl(card) + "?filters=" + encodeURIComponent(filters());
    if (stage) url += "&stage=" + encodeURIComponent(stage);
    // Emptied first: a refused or failed request swaps nothing in, and then no dialog opens.
    var body = document.getElementById("move-dialog-body");
    body.replaceChildren();
    htmx.ajax("GET", url, { target: "#move-dialog-body" }).then(function () {
      if (!body.children.length) return;
      if (!dialog().open) dialog().showModal();
      updateReasonFields(dialog());
      // The chosen stage first (a selector list would match in document order instead).
      var first = dialog().querySelector("input[type=radio]:checked") ||
        dialog().querySelector("input:not([type=hidden]), select, textarea, button");
      if (first) first.focus();
    });
  }

  function updateReasonFields(root) {
    var checked = root.querySelector(".move-form input[name=stage]:checked");
    if (checked) showReasonFields(checked.form, checked); // app.js
  }

  function dropped(event) {
    var card = event.item;
    var from = event.from;
    var to = event.to;
    if (from === to) return;
    pendingDrop = { card: card, from: from, index: event.oldIndex };
    var target = to.dataset.stage;
    var backwards = Number(to.dataset.order) < Number(from.dataset.order);
    if (target === "dead" || from.dataset.stage === "dead" || backwards) {
      openMenu(card, target); // ask for the reason before anything moves
      return;
    }
    htmx.ajax("POST", moveUrl(card), {
      target: "#move-dialog-body",
      values: { stage: target, version: card.dataset.version, via: "board", filters: filters() },
    });
  }

  function setDragging(enabled) {
    document.querySelectorAll(".column-cards").forEach(function (list) {
      if (list.sortable) list.sortable.option("disabled", !enabled);
    });
  }

  htmx.onLoad(function (root) {
    var lists = root.matches && root.matches(".column-cards") ? [root] : root.querySelectorAll(".column-cards");
    lists.forEach(function (list) {
      if (list.sortable) return;
      var open = list.dataset.accepts === "true";
      list.sortable = new Sortable(list, {
        group: { name: "board", pull: open, put: open },
        draggable: '.card[data-movable="true"]',
        filter: "a, button",
        preventOnFilter: false,
        sort: false,
        animation: 120,
        onEnd: dropped,
      });
    });
  });

  document.addEventListener("htmx:beforeRequest", function () { setDragging(false); });
  document.addEventListener("htmx:afterRequest", function () { setDragging(true); });

  // The server failed (5xx), did not answer, or refused in a way the app did not shape
  // (a proxy's 429, an expired session's 403...): the page must not show a move that the
  // server may not have made. A dropped card goes back; an open dialog keeps what was
  // typed and says so at its top.
  function requestFailed(text) {
    if (typeof text !== "string") text = board().dataset.failedText;
    if (dialog().open) {
      var body = document.getElementById("move-dialog-body");
      var alert = body.querySelector(".request-failed") || document.createElement("p");
      alert.className = "refusal request-failed";
      alert.setAttribute("role", "alert");
      alert.textContent = text;
      body.prepend(alert);
    } else {
      revert();
      warn(text);
    }
  }
  document.addEventListener("htmx:responseError", function () { requestFailed(); });
  document.addEventListener("htmx:sendError", function () { requestFailed(); });
  document.addEventListener("htmx:timeout", function () { requestFailed(); });

  // The app answers its refusals (400, 403, 409, 422) with the dialog's content and a
  // moveRefused event, and a card it no longer shows with its 404 page. Any other 4xx (or
  // one without that shape) is not swapped in: a message by status instead.
  function unshapedFailure(xhr) {
    var texts = board().dataset;
    if (xhr.status === 429) return texts.busyText;
    if (xhr.status === 403) return texts.forbiddenText;
    if (xhr.status === 400) return texts.badRequestText;
    return texts.refusedText;
  }
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (!xhr || xhr.status < 400 || xhr.status >= 500 || xhr.status === 404) return;
    if (event.detail.target.id !== "move-dialog-body") return;
    if (xhr.getResponseHeader("HX-Trigger-After-Settle")) return;
    event.detail.shouldSwap = false;
    event.detail.isError = false;
    requestFailed(unshapedFailure(xhr));
  });

  // A card this user may no longer see (reassigned to another team meanwhile) answers
  // 404 with its explanation: the card goes back and the dialog shows why.
  document.addEventListener("htmx:afterSettle", function (event) {
    var xhr = event.detail.xhr;
    if (!xhr || xhr.status !== 404 || event.detail.target.id !== "move-dialog-body") return;
    if (!dialog().open) {
      revert();
      dialog().showModal();
    }
  });

  // The server sends the moved card alone; it goes where its column's order puts it among
  // the cards shown (a column not on this board, such as a hidden Dead, drops it).
  function placeCard(id, stage) {
    var card = document.getElementById("card-" + id);
    if (!card) return;
    var list = document.querySelector('.column-cards[data-stage="' + stage + '"]');
    if (!list) { card.remove(); return; }
    var before = null;
    var cards = list.querySelectorAll(".card");
    for (var i = 0; i < cards.length; i++) {
      if (cards[i] !== card && cards[i].dataset.sortKey > card.dataset.sortKey) {
        before = cards[i];
        break;
      }
    }
    list.insertBefore(card, before);
  }

  // A card that had left this board (the filter no longer matched it) and comes back,
  // say by Undo: htmx finds no card to replace, so it joins a column here and boardMoved
  // puts it in its place.
  document.addEventListener("htmx:oobErrorNoTarget", function (event) {
    var content = event.detail.content;
    var list = document.querySelector(".column-cards");
    if (!list || !content || !content.classList || !content.classList.contains("card")) return;
    content.removeAttribute("hx-swap-oob");
    list.appendChild(content);
  });

  // A card placed past the last one loaded comes again with "Load more", in its place:
  // the copy placed earlier goes.
  document.addEventListener("htmx:afterSwap", function (event) {
    var list = event.detail.target;
    if (!list.matches || !list.matches(".column-cards")) return;
    var seen = {};
    var cards = Array.prototype.slice.call(list.querySelectorAll(".card")).reverse();
    cards.forEach(function (card) {
      var id = card.dataset.opportunityId;
      if (seen[id]) card.remove(); else seen[id] = true;
    });
  });

  document.addEventListener("boardMoved", function (event) {
    pendingDrop = null;
    placeCard(event.detail.id, event.detail.stage);
    if (dialog().open) dialog().close();
    // The notice's words, not its Undo button's.
    var notice = document.querySelector("#board-notice .notice-line > span");
    if (notice) announce(notice.textContent.trim());
    var card = document.getElementById("card-" + event.detail.id);
    if (card) card.focus();
    clearTimeout(undoTimer);
    undoTimer = setTimeout(function () {
      var undo = document.querySelector("#board-notice form.undo");
      if (undo) undo.remove();
    }, 10000);
  });

  document.addEventListener("moveRefused", function (event) {
    pendingDrop = null; // the server re-rendered the columns: the card is back where it is
    dialogCardId = event.detail.id;
    if (event.detail.conflict) {
      if (dialog().open) dialog().close(); // the notice, an alert, says who changed it
      return;
    }
    if (!dialog().open) dialog().showModal();
    focusNextStep();
  });

  // After each tick (or refused tick) in the dialog, focus moves on, not to the page.
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target.matches && event.target.matches(".checklist") &&
        dialog().contains(event.target)) {
      focusNextStep();
    }
  });

  document.addEventListener("click", function (event) {
    var menuButton = event.target.closest("[data-move-menu]");
    if (menuButton) {
      openMenu(menuButton.closest(".card"), "");
      return;
    }
    if (event.target.closest("[data-close-dialog]")) dialog().close();
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches(".move-form input[name=stage]")) updateReasonFields(dialog());
  });

  document.addEventListener("close", function (event) {
    if (event.target !== dialog()) return;
    revert();
    // The dialog gives focus back to what opened it, unless a swap replaced that element
    // or a drag opened it: then focus would stay lost in the closed dialog.
    var active = document.activeElement;
    var card = dialogCardId && document.getElementById("card-" + dialogCardId);
    if (card && (!active || active === document.body || dialog().contains(active))) {
      card.focus();
    }
  }, true);
})();
