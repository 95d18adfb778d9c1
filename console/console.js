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
  return iso
    ? iso
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z')
        .replace('Z', ' UTC')
    : '';
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
    if (typeof body?.attemptsLeft === 'number')
      text += ` ${body.attemptsLeft} more wrong code${body.attemptsLeft === 1 ? '' : 's'} lock the token.`;
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
    const { status, body } = await call(form.dataset.api, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(formJson(form)),
    });
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
      // Retiring disables the token's secret in Key Vault; when that has to be tried again, the notice says so.
      const done = form.dataset.api === 'retire' && body?.secretDisabled === false ? 'retired-secret-pending' : form.dataset.done;
      if (done) reloadWith(done);
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
      const words = {
        completed: 'Completed',
        'completed-with-problems': 'Completed with problems',
        rejected: 'Rejected',
        'nothing-to-do': 'Nothing to do',
      };
      waiting.textContent = `${words[s.outcome] ?? s.outcome}: ${s.errors} error${s.errors === 1 ? '' : 's'}, ${s.warnings} warning${s.warnings === 1 ? '' : 's'}, ${s.tokens} token row${s.tokens === 1 ? '' : 's'}.`;
      waiting.className = s.outcome === 'completed' ? 'accepted' : 'rejected';
      if (body.transportKeyDisabled)
        line(
          region,
          `The pre-shared key or password is now disabled in Key Vault (${body.transportKeyDisabled}); delete it there once the batch is settled.`,
        );
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

// ---- Programming tokens: the package is shown a token at a time, then forgotten ----

/** Keeps the page from being left while seeds are still to be burned (they are shown once). */
function holdPage(event) {
  event.preventDefault();
  event.returnValue = '';
}

function programRequest(form) {
  const serials = form.elements.serials.value
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const manufacturer = form.elements.manufacturer.value.trim();
  const model = form.elements.model.value.trim();
  const tokens = serials.map((serial) => ({ serial, ...(manufacturer ? { manufacturer } : {}), ...(model ? { model } : {}) }));
  return {
    tokens,
    period: Number(form.elements.period.value),
    algorithm: form.elements.algorithm.value,
    digits: Number(form.elements.digits.value),
  };
}

function burnSection(section, queue, report) {
  const heading = section.querySelector('h2');
  const image = section.querySelector('.qr img');
  const caption = section.querySelector('.qr figcaption');
  const base32 = section.querySelector('code.base32');
  const hex = section.querySelector('code.hex');
  const details = section.querySelector('details');
  const burned = section.querySelector('button.burned');
  const total = queue.length;
  let index = 0;
  const show = () => {
    const token = queue[index];
    heading.textContent = `Token ${index + 1} of ${total}: ${token.serial}`;
    image.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(token.qrSvg)}`;
    image.alt = `QR code with the seed of token ${token.serial}`;
    caption.textContent = `Scan it with the programming app to write the seed onto token ${token.serial}.`;
    base32.textContent = token.secretBase32;
    hex.textContent = token.secretHex;
    details.open = false;
    burned.textContent = index + 1 < total ? 'Burned: next token' : 'Burned: finish';
    heading.focus();
  };
  const forget = () => {
    // Every copy of a seed this page held goes: the DOM's and the script's.
    image.removeAttribute('src');
    image.alt = '';
    for (const element of [caption, base32, hex]) element.textContent = '';
    queue.fill(null);
  };
  burned.addEventListener('click', () => {
    queue[index] = null;
    index++;
    if (index < total) {
      show();
      return;
    }
    forget();
    section.hidden = true;
    window.removeEventListener('beforeunload', holdPage);
    const done = document.querySelector('.burn-done');
    done.hidden = false;
    done.textContent = `All ${total} token${total === 1 ? ' is' : 's are'} burned. This page holds no seed any more; they are in Key Vault and on the tokens. `;
    if (report) {
      const a = document.createElement('a');
      a.href = `/api/console/batch?${new URLSearchParams({ name: report }).toString()}`;
      a.textContent = 'Open the report';
      done.append(a);
    }
    done.focus();
  });
  section.hidden = false;
  window.addEventListener('beforeunload', holdPage);
  show();
}

async function submitProgram(form, button) {
  const region = form.querySelector('.result');
  const request = programRequest(form);
  if (request.tokens.length === 0) {
    say(region, 'Not programmed: name at least one serial.', 'rejected');
    return;
  }
  button.disabled = true;
  say(region, 'Working…');
  try {
    const { status, body } = await call('program', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request),
    });
    if (status !== 201) {
      const serials = Array.isArray(body?.error?.serials) && body.error.serials.length > 0 ? ` (${body.error.serials.join(', ')})` : '';
      say(region, `Not programmed: ${errorText(body, status)}${serials}`, 'rejected');
      return;
    }
    say(region, `Programmed ${body.tokens.length} token${body.tokens.length === 1 ? '' : 's'} in batch ${body.batch}.`, 'accepted');
    form.hidden = true;
    burnSection(document.querySelector('section.burn'), body.tokens, body.report);
  } catch {
    say(region, 'Not programmed: the console could not be reached. Check the connection and try again.', 'rejected');
  } finally {
    button.disabled = false;
  }
}

for (const form of document.querySelectorAll('form.program-form')) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void submitProgram(form, event.submitter ?? form.querySelector('button'));
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
