/* AE logs coded to CTCAE v5.0: once the term's LLT code is typed in aellt, only the grades that
 * term defines stay selectable in aetoxgr. The server refuses the others on save either way; this
 * only saves the user a round trip. The grade table comes from
 * <script type="application/json" id="ecrf-ctcae-grades"> (no inline script: the CSP forbids it). */
(function () {
  "use strict";
  var data = document.getElementById("ecrf-ctcae-grades");
  var code = document.querySelector('[data-field="aellt"] input');
  var grades = document.querySelectorAll('[data-field="aetoxgr"] input[type="radio"]');
  if (!data || !code || !grades.length) { return; }
  var table = JSON.parse(data.textContent);

  function apply() {
    var defined = table[code.value.trim()];
    grades.forEach(function (radio) {
      if (radio.value === "") { return; }  // "No answer" stays available
      var allowed = !defined || defined.indexOf(Number(radio.value)) !== -1;
      radio.disabled = !allowed;
      if (!allowed && radio.checked) { radio.checked = false; }
      radio.closest(".choice").classList.toggle("not-defined", !allowed);
    });
  }
  code.addEventListener("input", apply);
  apply();
}());
