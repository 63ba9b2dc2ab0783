/* 知识库: check a file's type and size before it is sent, keep the upload form's fields across a sign-in
   (sessionStorage), block double submits, and follow ingestion progress. The pages work without it. */
(function () {
  "use strict";
  var DRAFT = "medfusion.kb.upload";
  var form = document.getElementById("upload-form");

  function explain(message) {
    var box = document.getElementById("upload-check");
    if (!box) return;
    box.textContent = message;
    box.hidden = !message;
  }

  function problem(file) {
    if (!file) return "";
    var accepted = (form.getAttribute("data-accept") || "").split(",");
    var dot = file.name.lastIndexOf(".");
    var suffix = dot >= 0 ? file.name.slice(dot).toLowerCase() : "";
    if (accepted.indexOf(suffix) < 0) {
      return "不支持的文件类型 " + (suffix || "（无扩展名）") + "：只接受 PDF、DOCX、HTML、Markdown、TXT（unsupported_media_type）";
    }
    if (file.size === 0) return "文件是空的（document_unreadable）";
    if (file.size > Number(form.getAttribute("data-max-bytes"))) {
      return "文件 " + (file.size / 1048576).toFixed(1) + " MB，超过上传上限 " + form.getAttribute("data-limit-label") + "（payload_too_large）";
    }
    return "";
  }

  function saveDraft() {
    var data = {};
    form.querySelectorAll("[data-draft]").forEach(function (el) {
      data[el.name] = el.type === "checkbox" ? (el.checked ? "on" : "") : el.value;
    });
    try { sessionStorage.setItem(DRAFT, JSON.stringify(data)); } catch (e) { /* storage off: nothing kept */ }
  }

  function restoreDraft() {
    var raw = null;
    try { raw = sessionStorage.getItem(DRAFT); } catch (e) { return; }
    if (!raw) return;
    var data = JSON.parse(raw), restored = false;
    form.querySelectorAll("[data-draft]").forEach(function (el) {
      if (!(el.name in data)) return;
      var value = data[el.name];
      if (el.type === "checkbox") {
        if (el.checked !== (value === "on")) { el.checked = value === "on"; restored = true; }
      } else if (el.value !== value) {
        el.value = value;
        restored = restored || value !== "";
      }
    });
    var note = document.getElementById("draft-note");
    if (restored && note) note.hidden = false;
  }

  if (document.querySelector("[data-clear-draft]")) {
    try { sessionStorage.removeItem(DRAFT); } catch (e) { /* nothing to clear */ }
  }

  if (form) {
    var input = form.querySelector("input[type=file]");
    var button = document.getElementById("upload-submit");
    restoreDraft();
    form.addEventListener("input", saveDraft);
    form.addEventListener("change", saveDraft);
    input.addEventListener("change", function () {
      var message = problem(input.files[0]);
      input.setCustomValidity(message);
      input.setAttribute("aria-invalid", message ? "true" : "false");
      explain(message);
    });
    form.addEventListener("submit", function (event) {
      var message = problem(input.files[0]);
      if (message || form.getAttribute("data-sending") === "true") {
        event.preventDefault();
        explain(message);
        return;
      }
      saveDraft();
      form.setAttribute("data-sending", "true");
      button.disabled = true;
      button.textContent = "上传中…";
      var status = document.getElementById("upload-status");
      status.textContent = " 正在上传，请勿关闭页面";
      var spinner = document.createElement("span");
      spinner.className = "spinner";
      spinner.setAttribute("aria-hidden", "true");
      status.insertBefore(spinner, status.firstChild);
    });
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) {  // back from the task page: the form can be used again
        form.removeAttribute("data-sending");
        button.disabled = false;
        button.textContent = "上传并导入";
      }
    });
  }

  var list = document.querySelector("[data-poll]");
  var BADGES = { queued: "badge-muted", reading: "badge-info", embedding: "badge-info", completed: "badge-ok",
                 failed: "badge-danger", interrupted: "badge-warn" };
  function active() { return list ? list.querySelectorAll("[data-active=true]") : []; }

  function show(row, t) {
    var state = row.querySelector("[data-role=state]");
    state.textContent = t.label;
    state.className = "badge " + BADGES[t.state];
    var bar = row.querySelector("[data-role=bar]");
    var counts = row.querySelector("[data-role=counts]");
    if (t.state === "embedding" && t.embed_total) {
      bar.max = t.embed_total;
      bar.value = t.embedded;
      counts.textContent = "向量化 " + t.embedded + " / " + t.embed_total + " 个片段";
    } else if (t.state === "reading") {
      counts.textContent = "正在读取、切分并建立索引…";
    } else if (t.state === "completed") {
      bar.max = 1;
      bar.value = 1;
      counts.textContent = "完成：" + t.chunks + " 个片段，向量 " + t.embedded + " 个" +
        (t.outcome === "unchanged" ? "（内容未变，未重复导入）" : "") + "。刷新页面可在文档列表中看到它。";
    } else if (!t.active) {
      if (bar) bar.remove();
      counts.textContent = (t.state === "failed" ? "失败：" : "已中断：") + (t.error_message || "");
    }
    row.setAttribute("data-active", t.active ? "true" : "false");
  }
  if (list && active().length) {
    var timer = setInterval(function () {
      fetch(list.getAttribute("data-poll"), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (body) {
          var finished = false;
          body.tasks.forEach(function (t) {
            var row = list.querySelector('[data-task-id="' + t.id + '"]');
            if (!row || row.getAttribute("data-active") !== "true") return;
            finished = finished || !t.active;
            show(row, t);
          });
          // the task page shows its outcome above the list: reload it; the main page keeps its form as it is
          if (finished && !form) { clearInterval(timer); window.location.reload(); return; }
          if (!active().length) clearInterval(timer);
        })
        .catch(function () { clearInterval(timer); });
    }, 1500);
  }
})();
