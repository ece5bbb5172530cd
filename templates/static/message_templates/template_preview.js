// Live preview of a message template in the admin: fills {{name}} placeholders from the
// sample variables as the staff member types, and lists the names still missing.
"use strict";
(function () {
  const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

  function render(text, vars, missing) {
    return (text || "").replace(PLACEHOLDER, function (_, name) {
      if (Object.prototype.hasOwnProperty.call(vars, name)) return vars[name];
      missing.add(name);
      return "{{" + name + "}}";
    });
  }

  function update(parts) {
    let vars = {};
    let note = "";
    try {
      const parsed = JSON.parse(parts.vars.value || "{}");
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) vars = parsed;
      else note = "Sample variables must be a JSON object.";
    } catch (e) {
      note = "Sample variables are not valid JSON yet.";
    }
    const missing = new Set();
    const subject = render(parts.subject ? parts.subject.value : "", vars, missing);
    const body = render(parts.body.value, vars, missing);
    parts.subjectOut.textContent = subject;
    parts.subjectRow.hidden = !subject;
    parts.bodyOut.textContent = body;
    parts.characters.textContent = body.length + " characters";
    parts.missing.textContent = note || (missing.size ? "Missing variables: " + Array.from(missing).join(", ") : "");
  }

  document.addEventListener("DOMContentLoaded", function () {
    const body = document.getElementById("id_body");
    const vars = document.getElementById("id_sample_variables");
    if (!body || !vars) return;
    const box = document.createElement("div");
    box.className = "template-preview";
    box.innerHTML =
      '<div class="template-preview-subject"><strong>Subject:</strong> <span></span></div>' +
      '<pre class="template-preview-body"></pre>' +
      '<div class="template-preview-meta"><span class="template-preview-count"></span> ' +
      '<span class="template-preview-missing"></span></div>';
    vars.closest(".form-row").after(box);
    const parts = {
      body: body,
      vars: vars,
      subject: document.getElementById("id_subject"),
      subjectRow: box.querySelector(".template-preview-subject"),
      subjectOut: box.querySelector(".template-preview-subject span"),
      bodyOut: box.querySelector(".template-preview-body"),
      characters: box.querySelector(".template-preview-count"),
      missing: box.querySelector(".template-preview-missing"),
    };
    [body, vars, parts.subject].forEach(function (el) {
      if (el) el.addEventListener("input", function () { update(parts); });
    });
    update(parts);
  });
})();
