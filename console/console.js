// The console's only script: sends the pages' forms to the console API (with the same-origin header the API
// requires), says what happened in each form's status line, and follows uploads to their report. The pages are
// rendered on the server; this file adds no markup of its own beyond those status lines.
const API = '/api/console/api/';
const HEADERS = { 'x-console-request': '1' };

/** Calls the console API; resolves with { status, body } whatever the status. */
async function call(path, init = {}) {
  const response = await fetch(API + path, { credentials: 'same-origin', ...init, headers: { ...HEADERS, ...(init.headers ?? {}) } });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return { status: response.status, body };
}

function errorText(body, status) {
  return body?.error?.message ?? `The console answered HTTP ${status}.`;
}

function say(region, text, kind) {
  region.textContent = text;
  region.classList.remove('accepted', 'rejected');
  if (kind) region.classList.add(kind);
}

function drift(seconds) {
  return `${seconds > 0 ? '+' : ''}${seconds} s`;
}

function when(iso) {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace('Z', ' UTC') : '';
}

/** The answer to a code check, in words: "Accepted" or "Not accepted", the drift, what to do next. */
function verifyAnswer(form, status, body) {
  const region = form.querySelector('.result');
  const next = form.querySelector('.next-code');
  const nextInput = next?.querySelector('input');
  if (status === 200 && body?.valid) {
    const driftText = typeof body.driftSeconds === 'number' ? ` Drift: ${drift(body.driftSeconds)}.` : '';
    say(region, `Accepted.${driftText}`, 'accepted');
    if (next) {
      next.hidden = true;
      nextInput.disabled = true;
      nextInput.value = '';
    }
    return;
  }
  if (status === 200 && body?.confirmationRequired) {
    say(region, 'Not accepted yet: the code matched a time far from now. Type the next code the token shows to confirm it.', 'rejected');
    if (next) {
      next.hidden = false;
      nextInput.disabled = false;
      nextInput.required = true;
      nextInput.focus();
    }
    return;
  }
  let text = 'Not accepted.';
  if (status === 200) {
    if (typeof body?.attemptsLeft === 'number') text += ` ${body.attemptsLeft} more wrong code${body.attemptsLeft === 1 ? '' : 's'} lock the token.`;
  } else {
    text = `Not accepted: ${errorText(body, status)}`;
  }
  if (body?.lockedUntil) text += ` Locked until ${when(body.lockedUntil)}.`;
  say(region, text, 'rejected');
}

function formJson(form) {
  const data = {};
  for (const element of form.elements) {
    if (!element.name || element.disabled) continue;
    data[element.name] = element.value;
  }
  return data;
}

/** After a change, reload the page with a notice, so what is shown is what is stored. */
function reloadWith(done) {
  const url = new URL(window.location.href);
  url.searchParams.set('done', done);
  window.location.assign(url.toString());
}

async function submitApiForm(form, button) {
  const region = form.querySelector('.result');
  const confirmText = form.dataset.confirm;
  if (confirmText && !window.confirm(confirmText)) return;
  button.disabled = true;
  say(region, 'Working…');
  try {
    const { status, body } = await call(form.dataset.api, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(formJson(form)) });
    if (form.dataset.api === 'verify') {
      verifyAnswer(form, status, body);
      const code = form.querySelector('input[name="code"]');
      if (!(status === 200 && body?.confirmationRequired)) code.value = '';
      return;
    }
    if (status >= 200 && status < 300) {
      if (body && body.changed === false && form.dataset.api === 'reassign') {
        say(region, 'Done: the token was already assigned to that user.', 'accepted');
        return;
      }
      say(region, 'Done.', 'accepted');
      if (form.dataset.done) reloadWith(form.dataset.done);
      return;
    }
    say(region, `Not done: ${errorText(body, status)}`, 'rejected');
  } catch {
    say(region, 'Not done: the console could not be reached. Check the connection and try again.', 'rejected');
  } finally {
    button.disabled = false;
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function line(region, text, kind) {
  const p = document.createElement('p');
  p.textContent = text;
  if (kind) p.className = kind;
  region.append(p);
  return p;
}

/** Polls the upload's status until its report exists (at most ten minutes), then links to it. */
async function follow(region, accepted) {
  const query = new URLSearchParams({ kind: accepted.kind, name: accepted.name, etag: accepted.etag });
  const waiting = line(region, 'Waiting for the pipeline to read the file…');
  for (let i = 0; i < 600; i++) {
    await sleep(i < 10 ? 500 : 1000);
    const { status, body } = await call(`uploads/status?${query.toString()}`);
    if (status !== 200) {
      waiting.textContent = `Could not follow the file: ${errorText(body, status)}`;
      return;
    }
    if (body.state === 'reported') {
      const s = body.summary;
      const words = { completed: 'Completed', 'completed-with-problems': 'Completed with problems', rejected: 'Rejected', 'nothing-to-do': 'Nothing to do' };
      waiting.textContent = `${words[s.outcome] ?? s.outcome}: ${s.errors} error${s.errors === 1 ? '' : 's'}, ${s.warnings} warning${s.warnings === 1 ? '' : 's'}, ${s.tokens} token row${s.tokens === 1 ? '' : 's'}.`;
      waiting.className = s.outcome === 'completed' ? 'accepted' : 'rejected';
      const p = line(region, '');
      const a = document.createElement('a');
      a.href = `/api/console/batch?${new URLSearchParams({ name: body.report }).toString()}`;
      a.textContent = 'Open the report';
      p.append(a);
      return;
    }
  }
  waiting.textContent = 'The pipeline has not reported on the file after ten minutes; look for it under Batches later.';
}

async function submitUpload(form, button) {
  const region = form.querySelector('.progress');
  const input = form.querySelector('input[type="file"]');
  region.replaceChildren();
  if (!input.files || input.files.length === 0) {
    line(region, 'Not uploaded: choose a file first.', 'rejected');
    input.focus();
    return;
  }
  const data = new FormData(form);
  // The key leaves the page with this one request and is not kept in it.
  const key = form.querySelector('input[name="transportKey"]');
  if (key) key.value = '';
  button.disabled = true;
  line(region, `Uploading ${input.files[0].name}…`);
  try {
    const { status, body } = await call(`uploads/${form.dataset.upload}`, { method: 'POST', body: data });
    if (status !== 202) {
      line(region, `Not uploaded: ${errorText(body, status)}`, 'rejected');
      return;
    }
    line(region, `Uploaded as ${body.name}.`, 'accepted');
    form.reset();
    await follow(region, body);
  } catch {
    line(region, 'Not uploaded: the console could not be reached. Check the connection and try again.', 'rejected');
  } finally {
    button.disabled = false;
  }
}

function enableDrop(zone) {
  const input = zone.querySelector('input[type="file"]');
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    if (event.dataTransfer?.files?.length) input.files = event.dataTransfer.files;
  });
}

for (const form of document.querySelectorAll('form.api-form')) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void submitApiForm(form, event.submitter ?? form.querySelector('button'));
  });
}
for (const form of document.querySelectorAll('form.upload-form')) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void submitUpload(form, event.submitter ?? form.querySelector('button'));
  });
}
for (const zone of document.querySelectorAll('.drop')) enableDrop(zone);
