//! Call recordings, written off the media path: media workers hand each
//! frame of audio (already decoded to 16-bit PCM, placed on the recording's
//! timeline) to one writer thread, which mixes the two directions into a
//! stereo WAV file (left: the agent, right: the customer) under
//! `DATA_DIR/recordings/TENANT/CALL_ID.wav`.
//!
//! A worker never waits for the disk: frames go through a queue bounded by
//! count ([`MAX_QUEUED`]), and a frame that finds it full is dropped and
//! counted (the recording gets a gap, the call none). Opening and closing a
//! recording are never dropped. The file's header is brought up to date
//! every second, so a crash loses at most the last second.

use seatline_media::g711;
use seatline_media::recording::{StereoMixer, Timeline, RATE};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Samples in one frame handed to the writer (20 ms of G.711).
pub const FRAME: usize = 160;

/// Frames waiting for the writer, at most (about 40 s of one call's audio).
const MAX_QUEUED: usize = 4096;

// Frames travel inline: the channel's blocks hold them, with no allocation
// per frame (a boxed frame would cost one per 20 ms per call).
#[allow(clippy::large_enum_variant)]
enum Msg {
    Open {
        id: u64,
        call_id: String,
        path: PathBuf,
    },
    Frame(Frame),
    Close {
        id: u64,
    },
}

struct Frame {
    id: u64,
    ch: u8,
    pos: u64,
    len: u16,
    pcm: [i16; FRAME],
}

/// The handle workers and the HTTP side share.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Msg>,
    queued: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    next_id: Arc<AtomicU64>,
    /// Call ids whose file is still being written.
    writing: Arc<Mutex<HashSet<String>>>,
    dir: PathBuf,
}

/// Whether a call id is safe as a file name (ours always are).
pub fn safe_call_id(call_id: &str) -> bool {
    !call_id.is_empty()
        && call_id.len() <= 64
        && call_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Recorder {
    /// Starts the writer thread; recordings go under `data_dir/recordings`.
    pub fn start(data_dir: &Path) -> std::io::Result<Recorder> {
        let (tx, rx) = mpsc::channel();
        let r = Recorder {
            tx,
            queued: Arc::default(),
            dropped: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
            writing: Arc::default(),
            dir: data_dir.join("recordings"),
        };
        let (queued, writing) = (r.queued.clone(), r.writing.clone());
        std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || write_loop(rx, queued, writing))?;
        Ok(r)
    }

    /// Where a call's recording is (or would be).
    pub fn path_of(&self, tenant_id: i64, call_id: &str) -> Option<PathBuf> {
        safe_call_id(call_id).then(|| {
            self.dir
                .join(tenant_id.to_string())
                .join(format!("{call_id}.wav"))
        })
    }

    /// The tenant's directory of recordings.
    pub fn tenant_dir(&self, tenant_id: i64) -> PathBuf {
        self.dir.join(tenant_id.to_string())
    }

    /// Begins a recording; `None` when the call id cannot name a file.
    pub fn open(&self, tenant_id: i64, call_id: &str) -> Option<u64> {
        let path = self.path_of(tenant_id, call_id)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.writing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(call_id.to_string());
        let _ = self.tx.send(Msg::Open {
            id,
            call_id: call_id.to_string(),
            path,
        });
        Some(id)
    }

    /// Audio of one direction (`ch` 0: agent, 1: customer) at `pos`
    /// samples into recording `id`.
    pub fn frame(&self, id: u64, ch: u8, pos: u64, pcm: &[i16]) {
        for (i, chunk) in pcm.chunks(FRAME).enumerate() {
            if self.queued.fetch_add(1, Ordering::Relaxed) >= MAX_QUEUED {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let mut f = Frame {
                id,
                ch,
                pos: pos + (i * FRAME) as u64,
                len: chunk.len() as u16,
                pcm: [0; FRAME],
            };
            f.pcm[..chunk.len()].copy_from_slice(chunk);
            if self.tx.send(Msg::Frame(f)).is_err() {
                self.queued.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    pub fn close(&self, id: u64) {
        let _ = self.tx.send(Msg::Close { id });
    }

    /// Is the call's file still being written? (Its call just ended.)
    pub fn is_writing(&self, call_id: &str) -> bool {
        self.writing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(call_id)
    }

    /// Frames dropped because the writer was behind.
    pub fn dropped_frames(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A call's recording as its worker feeds it: each direction placed on the
/// recording's timeline by its own RTP timestamps. Stopping pauses it; the
/// recording goes on from where it was when started again, and is closed
/// when the call's media goes.
pub(super) struct Tap {
    recorder: Recorder,
    id: u64,
    start: Instant,
    pub(super) paused_since: Option<Instant>,
    pub(super) paused: Duration,
    /// 0: the agent's audio, 1: the customer's.
    lines: [Timeline; 2],
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.recorder.close(self.id);
    }
}

impl Tap {
    pub(super) fn new(recorder: Recorder, id: u64, now: Instant) -> Tap {
        Tap {
            recorder,
            id,
            start: now,
            paused_since: None,
            paused: Duration::ZERO,
            lines: Default::default(),
        }
    }

    /// One packet's G.711 `payload` (law `law`: 0 μ-law, 8 A-law) of
    /// direction `ch`, decoded into `lin`, to the recording.
    pub(super) fn feed(
        &mut self,
        ch: usize,
        ts: u32,
        payload: &[u8],
        law: u8,
        now: Instant,
        lin: &mut Vec<i16>,
    ) {
        if self.paused_since.is_some() {
            return;
        }
        let heard = now
            .saturating_duration_since(self.start)
            .saturating_sub(self.paused);
        let arrival = (heard.as_micros() * u128::from(RATE) / 1_000_000) as u64;
        let pos = self.lines[ch].place(ts, arrival);
        lin.clear();
        lin.extend(payload.iter().map(|b| {
            if law == 8 {
                g711::alaw_to_linear(*b)
            } else {
                g711::ulaw_to_linear(*b)
            }
        }));
        self.recorder.frame(self.id, ch as u8, pos, lin);
    }
}

struct Open {
    call_id: String,
    wav: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
    mixer: StereoMixer,
}

fn create(path: &Path) -> Result<hound::WavWriter<std::io::BufWriter<std::fs::File>>, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    hound::WavWriter::create(path, spec).map_err(|e| e.to_string())
}

fn write_out(o: &mut Open, samples: &[i16]) {
    for s in samples {
        if o.wav.write_sample(*s).is_err() {
            break;
        }
    }
}

fn write_loop(
    rx: mpsc::Receiver<Msg>,
    queued: Arc<AtomicUsize>,
    writing: Arc<Mutex<HashSet<String>>>,
) {
    let mut open: HashMap<u64, Open> = HashMap::new();
    let mut scratch = Vec::new();
    let mut last_flush = Instant::now();
    let done = |call_id: &str| {
        writing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(call_id);
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(Msg::Open { id, call_id, path }) => match create(&path) {
                Ok(wav) => {
                    open.insert(
                        id,
                        Open {
                            call_id,
                            wav,
                            mixer: StereoMixer::new(),
                        },
                    );
                }
                Err(e) => {
                    tracing::error!(call_id, "cannot create the call's recording: {e}");
                    done(&call_id);
                }
            },
            Ok(Msg::Frame(f)) => {
                queued.fetch_sub(1, Ordering::Relaxed);
                if let Some(o) = open.get_mut(&f.id) {
                    o.mixer
                        .put(usize::from(f.ch), f.pos, &f.pcm[..usize::from(f.len)]);
                    scratch.clear();
                    o.mixer.take_ready(&mut scratch);
                    write_out(o, &scratch);
                }
            }
            Ok(Msg::Close { id }) => {
                if let Some(mut o) = open.remove(&id) {
                    scratch.clear();
                    o.mixer.take_all(&mut scratch);
                    write_out(&mut o, &scratch);
                    if let Err(e) = o.wav.finalize() {
                        tracing::error!(
                            call_id = o.call_id,
                            "cannot finish the call's recording: {e}"
                        );
                    }
                    done(&o.call_id);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                for (_, o) in open.drain() {
                    let _ = o.wav.finalize();
                    done(&o.call_id);
                }
                return;
            }
        }
        if last_flush.elapsed() >= Duration::from_secs(1) {
            last_flush = Instant::now();
            for o in open.values_mut() {
                let _ = o.wav.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let mut r = hound::WavReader::open(path).unwrap();
        let spec = r.spec();
        (spec, r.samples::<i16>().map(Result::unwrap).collect())
    }

    fn wait_written(r: &Recorder, call_id: &str) {
        let until = Instant::now() + Duration::from_secs(5);
        while r.is_writing(call_id) {
            assert!(Instant::now() < until, "the recording was not finished");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn both_directions_land_in_a_stereo_wav_in_their_places() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::start(dir.path()).unwrap();
        let id = r.open(7, "call-1").unwrap();
        assert!(r.is_writing("call-1"));
        r.frame(id, 0, 0, &[100; 320]);
        r.frame(id, 1, 160, &[-200; 160]);
        r.close(id);
        wait_written(&r, "call-1");
        let (spec, s) = read(&dir.path().join("recordings/7/call-1.wav"));
        assert_eq!((spec.channels, spec.sample_rate), (2, 8000));
        assert_eq!(s.len(), 640);
        assert_eq!(&s[..2], &[100, 0]);
        assert_eq!(&s[320..322], &[100, -200]);
    }

    #[test]
    fn a_call_id_that_is_not_ours_names_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::start(dir.path()).unwrap();
        for bad in ["../x", "a/b", "", "x.wav\0", &"a".repeat(65)] {
            assert!(r.open(1, bad).is_none(), "{bad:?}");
        }
        assert!(!dir.path().join("recordings").exists());
    }
}
