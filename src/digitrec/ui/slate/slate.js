// The drawing slate: a mouse, a finger or a pen draws on it (pointer events, every sampled
// point kept); Clear wipes it here, at once; Predict sends the picture together with the
// drawing's id as one trigger value, so the press and the image it means arrive together.
//
// Streamlit calls this function when the component mounts and again whenever its data
// changes, on the same elements: what the slate holds lives on its root element, and the
// function returned removes this call's listeners.

const SIZE_PX = 280; // the canvas's own pixels, whatever size it is shown at
const PEN_PX = 18; // about 1.8 px once reduced to the 28 px MNIST field
const INK = "#ffffff"; // white ink on opaque black, as the model's preprocessing expects
const PAPER = "#000000";
const REPEAT_WINDOW_MS = 1000; // clicks on one drawing closer than this are one press

function newId() {
  // crypto.randomUUID needs a secure context; a page served over plain HTTP has none.
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function wipe(pen) {
  pen.fillStyle = PAPER;
  pen.fillRect(0, 0, SIZE_PX, SIZE_PX);
}

export default function slate(component) {
  const { data, parentElement, setTriggerValue } = component;
  const root = parentElement.querySelector(".slate");
  const canvas = root.querySelector("canvas");
  const clearButton = root.querySelector("button.clear");
  const predictButton = root.querySelector("button.predict");
  const pen = canvas.getContext("2d");
  const repredict = data?.repredict ?? 0;

  if (!root.slateState) {
    wipe(pen);
    root.slateState = {
      strokes: 0, // strokes since the last Clear
      drawing: newId(), // renewed by every stroke and Clear: what a press is about
      pointer: null, // the pointer drawing now, if any
      last: null, // its previous point, in canvas pixels
      repredict, // the last request to read the slate again that was answered
      sent: null, // the last press sent by a click: { drawing, at }
    };
  }
  const state = root.slateState;
  canvas.dataset.strokes = String(state.strokes);

  function at(event) {
    const box = canvas.getBoundingClientRect();
    return [
      ((event.clientX - box.left) * SIZE_PX) / box.width,
      ((event.clientY - box.top) * SIZE_PX) / box.height,
    ];
  }

  function inkTo([x, y]) {
    const [x0, y0] = state.last;
    pen.strokeStyle = INK;
    pen.lineWidth = PEN_PX;
    pen.lineCap = "round"; // round ends and joins: a felt pen
    pen.lineJoin = "round";
    pen.beginPath();
    pen.moveTo(x0, y0);
    pen.lineTo(x, y);
    pen.stroke();
    state.last = [x, y];
  }

  function dot([x, y]) {
    pen.fillStyle = INK;
    pen.beginPath();
    pen.arc(x, y, PEN_PX / 2, 0, 2 * Math.PI);
    pen.fill();
  }

  function down(event) {
    if (state.pointer !== null || (event.pointerType === "mouse" && event.button !== 0)) return;
    event.preventDefault();
    canvas.setPointerCapture?.(event.pointerId);
    state.pointer = event.pointerId;
    state.last = at(event);
    state.strokes += 1;
    state.drawing = newId();
    canvas.dataset.strokes = String(state.strokes);
    dot(state.last); // a tap leaves a dot (a line of no length draws nothing)
  }

  function move(event) {
    if (event.pointerId !== state.pointer) return;
    event.preventDefault();
    // Every point the device sampled since the last event, not just the latest one: a fast
    // stroke keeps its corners.
    const samples = event.getCoalescedEvents?.() ?? [];
    for (const sample of samples.length ? samples : [event]) inkTo(at(sample));
  }

  function up(event) {
    if (event.pointerId !== state.pointer) return;
    if (event.type === "pointerup") move(event); // a cancelled stroke has no last point
    state.pointer = null;
    state.last = null;
  }

  function clear() {
    wipe(pen);
    state.strokes = 0;
    state.pointer = null;
    state.drawing = newId();
    canvas.dataset.strokes = "0";
    setTriggerValue("clear", state.drawing);
  }

  function press(again = false) {
    // More clicks on the same drawing within a moment are one press: each trigger reruns the
    // page, and a burst of reruns can leave it half drawn. A later click (a retry) is sent.
    const now = performance.now();
    const sent = state.sent;
    if (!again && sent?.drawing === state.drawing && now - sent.at < REPEAT_WINDOW_MS) return;
    if (!again) state.sent = { drawing: state.drawing, at: now };
    setTriggerValue("press", {
      image: state.strokes ? canvas.toDataURL("image/png") : null,
      drawing: state.drawing,
      again, // sent by the page (another model chosen), not by a click
    });
  }

  // A new request to read the slate again (another model chosen): answer it once, empty or not.
  if (repredict !== state.repredict) {
    state.repredict = repredict;
    press(true);
  }

  const onPredict = () => press();
  // Pointer events draw; the touch events behind them are cancelled so that a finger on the
  // slate starts no gesture at all (no scroll, no zoom, no fling that eats the next tap).
  const noGesture = (event) => event.preventDefault();
  const listeners = [
    [canvas, "touchstart", noGesture],
    [canvas, "touchmove", noGesture],
    [canvas, "pointerdown", down],
    [canvas, "pointermove", move],
    [canvas, "pointerup", up],
    [canvas, "pointercancel", up],
    [clearButton, "click", clear],
    [predictButton, "click", onPredict],
  ];
  for (const [target, type, listener] of listeners) {
    target.addEventListener(type, listener, { passive: false });
  }
  return () => {
    for (const [target, type, listener] of listeners) target.removeEventListener(type, listener);
  };
}
