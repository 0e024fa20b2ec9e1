// The audio path of the tab that holds the agent's audio: the microphone,
// one RTCPeerConnection to the server (which answers as ICE-lite), and the
// element that plays the call. Other tabs have none: they show the state.

/** Why the audio path cannot be used; the page shows it, the host gets -1. */
/** @typedef {'noWebRTC'|'noAllow'|'micBlocked'|'rtcFailed'} AudioError */

export class AudioPath {
  /** @param {(op: any) => boolean} send */
  constructor(send) {
    this.send = send;
    /** @type {RTCPeerConnection|null} */
    this.pc = null;
    /** @type {MediaStream|null} */
    this.stream = null;
    /** @type {((v: {ok: boolean, error?: AudioError}) => void)|null} */
    this.waiting = null;
    this.micId = '';
    this.speakerId = '';
    this.el = /** @type {HTMLAudioElement} */ (document.getElementById('remote-audio'));
  }

  /** Sets the path up; resolves when the server's answer is applied. */
  async start() {
    this.stop();
    if (typeof RTCPeerConnection !== 'function' || !navigator.mediaDevices) return { ok: false, error: /** @type {AudioError} */ ('noWebRTC') };
    const fp = /** @type {any} */ (document).featurePolicy;
    if (fp && typeof fp.allowsFeature === 'function' && !fp.allowsFeature('microphone')) {
      return { ok: false, error: /** @type {AudioError} */ ('noAllow') };
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: this.micId ? { deviceId: { exact: this.micId } } : true });
    } catch (_) {
      return { ok: false, error: /** @type {AudioError} */ ('micBlocked') };
    }
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    for (const track of this.stream.getAudioTracks()) pc.addTrack(track, this.stream);
    pc.ontrack = (e) => {
      this.el.srcObject = e.streams[0] || new MediaStream([e.track]);
      this.el.play().catch(() => { /* autoplay refused: played on the next click */ });
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const done = new Promise((resolve) => {
      this.waiting = resolve;
      setTimeout(() => { if (this.waiting === resolve) { this.waiting = null; resolve({ ok: false, error: 'rtcFailed' }); } }, 10000);
    });
    if (!this.send({ op: 'rtcOffer', sdp: pc.localDescription ? pc.localDescription.sdp : offer.sdp })) {
      this.waiting = null;
      return { ok: false, error: /** @type {AudioError} */ ('rtcFailed') };
    }
    return /** @type {Promise<{ok: boolean, error?: AudioError}>} */ (done);
  }

  /** @param {string} sdp the server's answer */
  async answer(sdp) {
    const resolve = this.waiting;
    this.waiting = null;
    if (!this.pc || !resolve) return;
    try {
      await this.pc.setRemoteDescription({ type: 'answer', sdp });
      resolve({ ok: true });
    } catch (_) {
      resolve({ ok: false, error: 'rtcFailed' });
    }
  }

  /** The server refused our offer. */
  failed() {
    if (this.waiting) { this.waiting({ ok: false, error: 'rtcFailed' }); this.waiting = null; }
  }

  stop() {
    if (this.pc) this.pc.close();
    this.pc = null;
    if (this.stream) for (const t of this.stream.getTracks()) t.stop();
    this.stream = null;
    if (this.el) this.el.srcObject = null;
  }

  /** Chooses the speaker (setSinkId) at any time. @param {string} id */
  async setSpeaker(id) {
    this.speakerId = id;
    const el = /** @type {any} */ (this.el);
    if (typeof el.setSinkId === 'function') await el.setSinkId(id).catch(() => {});
  }

  /** Chooses the microphone at any time, also during a call. @param {string} id */
  async setMic(id) {
    this.micId = id;
    if (!this.pc) return;
    try {
      const next = await navigator.mediaDevices.getUserMedia({ audio: id ? { deviceId: { exact: id } } : true });
      const track = next.getAudioTracks()[0];
      const sender = this.pc.getSenders().find((s) => s.track && s.track.kind === 'audio');
      if (sender && track) await sender.replaceTrack(track);
      if (this.stream) for (const t of this.stream.getTracks()) t.stop();
      this.stream = next;
    } catch (_) { /* the old microphone stays */ }
  }

  /** Inbound audio figures, for the page's diagnostics and the tests. */
  async inbound() {
    if (!this.pc) return null;
    const stats = await this.pc.getStats();
    let out = null;
    stats.forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'audio') {
        out = { packetsReceived: r.packetsReceived, packetsLost: r.packetsLost, audioLevel: r.audioLevel, totalAudioEnergy: r.totalAudioEnergy, jitter: r.jitter };
      }
    });
    return out;
  }
}

/** @returns {Promise<{mics: MediaDeviceInfo[], speakers: MediaDeviceInfo[]}>} */
export async function devices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return { mics: [], speakers: [] };
  const all = await navigator.mediaDevices.enumerateDevices();
  return { mics: all.filter((d) => d.kind === 'audioinput'), speakers: all.filter((d) => d.kind === 'audiooutput') };
}
