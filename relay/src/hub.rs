//! The in-process registry of connected devices: wakes a device's sockets when mail arrives, carries
//! online-only frames (never stored) and presence to the sockets that asked for them. With several
//! relay processes on one database it also keeps which devices are connected to the other ones
//! (from their presence signals), so presence covers every instance.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use hush_core::wire::relay::{Presence, ServerFrame, server_frame::Body};
use tokio::sync::{Notify, mpsc};

use crate::limits::PROTOCOL_VERSION;
use crate::storage::DeviceId;

/// Identifies one socket.
pub type ConnId = u64;

/// What the hub keeps of one authenticated socket.
#[derive(Clone)]
pub struct ConnHandle {
    /// The socket's id.
    pub id: ConnId,
    /// Woken when mail for the device was committed.
    pub wake: Arc<Notify>,
    /// Frames to write as they are (best effort: dropped when the socket lags).
    pub live: mpsc::Sender<ServerFrame>,
}

#[derive(Default)]
struct Inner {
    online: HashMap<DeviceId, Vec<ConnHandle>>,
    /// Watched device → sockets that subscribed to its presence.
    watchers: HashMap<DeviceId, HashMap<ConnId, mpsc::Sender<ServerFrame>>>,
    /// Device → the other relay processes it is connected to.
    remote: HashMap<DeviceId, HashSet<u64>>,
}

impl Inner {
    fn online_anywhere(&self, device: &DeviceId) -> bool {
        self.online.get(device).is_some_and(|s| !s.is_empty()) || self.remote.contains_key(device)
    }
}

/// The registry.
#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
}

/// A presence frame (request id 0).
pub fn presence_frame(device: &DeviceId, online: bool) -> ServerFrame {
    ServerFrame {
        version: PROTOCOL_VERSION,
        request_id: 0,
        body: Some(Body::Presence(Presence { device_key: device.to_vec(), online })),
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds an authenticated socket; tells watchers when the device comes online. True when it is
    /// the device's first socket here (other relay processes should hear of it).
    pub fn connect(&self, device: DeviceId, conn: ConnHandle) -> bool {
        let mut inner = self.lock();
        let was_offline = !inner.online_anywhere(&device);
        let sockets = inner.online.entry(device).or_default();
        let first_here = sockets.is_empty();
        sockets.push(conn);
        if was_offline {
            notify_watchers(&inner, &device, true);
        }
        first_here
    }

    /// Removes a socket (and its presence subscriptions); tells watchers when the device goes offline.
    /// True when it was the device's last socket here (other relay processes should hear of it).
    pub fn disconnect(&self, device: DeviceId, conn: ConnId, watched: &HashSet<DeviceId>) -> bool {
        let mut inner = self.lock();
        for w in watched {
            if let Some(set) = inner.watchers.get_mut(w) {
                set.remove(&conn);
                if set.is_empty() {
                    inner.watchers.remove(w);
                }
            }
        }
        let now_offline = match inner.online.get_mut(&device) {
            Some(sockets) => {
                sockets.retain(|c| c.id != conn);
                sockets.is_empty()
            }
            None => false,
        };
        if now_offline {
            inner.online.remove(&device);
            if !inner.online_anywhere(&device) {
                notify_watchers(&inner, &device, false);
            }
        }
        now_offline
    }

    /// Records that `device` connected to (or left) relay process `instance`; tells watchers here
    /// when that changes whether it is online anywhere.
    pub fn remote_presence(&self, instance: u64, device: DeviceId, online: bool) {
        let mut inner = self.lock();
        let before = inner.online_anywhere(&device);
        if online {
            inner.remote.entry(device).or_default().insert(instance);
        } else if let Some(set) = inner.remote.get_mut(&device) {
            set.remove(&instance);
            if set.is_empty() {
                inner.remote.remove(&device);
            }
        }
        if inner.online_anywhere(&device) != before {
            notify_watchers(&inner, &device, !before);
        }
    }

    /// Whether `device` is connected to another relay process (as far as its signals said).
    pub fn online_elsewhere(&self, device: &DeviceId) -> bool {
        self.lock().remote.contains_key(device)
    }

    /// The devices with a socket on this process.
    pub fn local_devices(&self) -> Vec<DeviceId> {
        self.lock().online.keys().copied().collect()
    }

    /// Wakes every socket of `device`; false when it has none (then it may deserve a push).
    pub fn wake(&self, device: &DeviceId) -> bool {
        let inner = self.lock();
        match inner.online.get(device) {
            Some(sockets) if !sockets.is_empty() => {
                // notify_one stores a permit when the socket is busy, so no wake-up is lost.
                sockets.iter().for_each(|c| c.wake.notify_one());
                true
            }
            _ => false,
        }
    }

    /// Wakes every socket (wake-ups from other relay processes may have been lost).
    pub fn wake_all(&self) {
        let inner = self.lock();
        inner.online.values().flatten().for_each(|c| c.wake.notify_one());
    }

    /// Hands an online-only frame to every socket of `device`; false when none took it.
    pub fn deliver_live(&self, device: &DeviceId, frame: &ServerFrame) -> bool {
        let inner = self.lock();
        let mut delivered = false;
        for c in inner.online.get(device).into_iter().flatten() {
            delivered |= c.live.try_send(frame.clone()).is_ok();
        }
        delivered
    }

    /// Replaces the presence subscriptions of socket `conn` (`old` → `new`) and queues the current
    /// presence of each newly watched device to `tx`.
    pub fn watch(
        &self,
        conn: ConnId,
        tx: &mpsc::Sender<ServerFrame>,
        old: &HashSet<DeviceId>,
        new: &HashSet<DeviceId>,
    ) {
        let mut inner = self.lock();
        for w in old.difference(new) {
            if let Some(set) = inner.watchers.get_mut(w) {
                set.remove(&conn);
                if set.is_empty() {
                    inner.watchers.remove(w);
                }
            }
        }
        for w in new {
            inner.watchers.entry(*w).or_default().insert(conn, tx.clone());
            let online = inner.online_anywhere(w);
            let _ = tx.try_send(presence_frame(w, online));
        }
    }
}

fn notify_watchers(inner: &Inner, device: &DeviceId, online: bool) {
    if let Some(set) = inner.watchers.get(device) {
        let frame = presence_frame(device, online);
        for tx in set.values() {
            // Best effort, like every presence signal: a lagging socket misses it.
            let _ = tx.try_send(frame.clone());
        }
    }
}
