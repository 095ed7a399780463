//! Nexmark queries 5, 7 and 8 as Rill steps over a stream of Nexmark
//! events (shared by the `nexmark` example, its tests and the benchmark).
//!
//! - q5, hot items: bids per auction in 10 s windows sliding by 2 s; per
//!   window, the auction(s) with the most bids.
//! - q7, highest bid: per 10 s tumbling window, the highest bid (a local
//!   maximum per auction group, then the window's maximum).
//! - q8, new users: persons who opened an auction in the same 10 s
//!   tumbling window as they registered (a windowed join).

use std::time::Duration;

use nexmark::event::{Auction, Bid, Event, Person};
use rill::{JoinKind, Joined, Stream, Windows};

/// Where each Nexmark event's event time is (ms).
pub fn event_time(e: &Event) -> u64 {
    match e {
        Event::Person(p) => p.date_time,
        Event::Auction(a) => a.date_time,
        Event::Bid(b) => b.date_time,
    }
}

/// Worker `worker` of `workers`'s share of `events` Nexmark events (all
/// of them: `None`), with event times.
pub fn generate(
    worker: usize,
    workers: usize,
    events: Option<u64>,
) -> impl Iterator<Item = (u64, Event)> {
    let generator = nexmark::EventGenerator::new(nexmark::config::NexmarkConfig::default())
        .with_offset(worker as u64)
        .with_step(workers as u64);
    let share = events
        .map(|n| (n / workers as u64 + u64::from((worker as u64) < n % workers as u64)) as usize);
    generator
        .take(share.unwrap_or(usize::MAX))
        .map(|e| (event_time(&e), e))
}

fn bids<'s>(events: Stream<'s, (), Event>) -> Stream<'s, (), Bid> {
    events.flat_map("bids", |e| match e {
        Event::Bid(b) => Some(b),
        _ => None,
    })
}

/// q5's result: in the window starting at `start`, `auction` had `bids`
/// bids, the most of any auction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HotItem {
    /// The window's start (ms).
    pub start: u64,
    /// The auction.
    pub auction: usize,
    /// Its bids in the window.
    pub bids: u64,
}

/// q5: hot items.
pub fn q5<'s>(events: Stream<'s, (), Event>) -> Stream<'s, u64, HotItem> {
    let size = Duration::from_secs(10);
    let slide = Duration::from_secs(2);
    bids(events)
        // Only the auction matters: the bid's strings stay behind.
        .map("auction", |b| b.auction)
        .key_by("by-auction", |a| *a)
        .window(Windows::hopping(size, slide))
        .count("bids-per-auction")
        .map_kv("per-window", |auction, w| {
            let item = HotItem {
                start: w.start,
                auction,
                bids: w.value,
            };
            (w.start, item)
        })
        .key_by("by-window", |item: &HotItem| item.start)
        // Every count of one sliding window has the same event time (its
        // end): one tumbling window of the slide holds them all.
        .window(Windows::tumbling(slide))
        .reduce("hottest", |a, b| {
            if (b.bids, b.auction) > (a.bids, a.auction) {
                b
            } else {
                a
            }
        })
        .map("hot-item", |w| w.value)
}

/// q7: the highest bid per 10 s window, as `(window start, bid)`.
pub fn q7<'s>(events: Stream<'s, (), Event>) -> Stream<'s, u64, (u64, Bid)> {
    let size = Duration::from_secs(10);
    let highest = |a: Bid, b: Bid| {
        if (b.price, b.auction) > (a.price, a.auction) {
            b
        } else {
            a
        }
    };
    bids(events)
        // A local maximum per group of auctions first: the window's
        // maximum then combines one bid per group, not every bid.
        .key_by("by-auction-group", |b| b.auction % 1024)
        .window(Windows::tumbling(size))
        .reduce("group-highest", highest)
        .map_kv("per-window", |_, w| (w.start, w.value))
        .group_by_key("by-window")
        .window(Windows::tumbling(size))
        .reduce("highest", highest)
        .map_kv("highest-bid", |start, w| (start, (w.start, w.value)))
}

/// q8's result: `person` (named `name`) opened `auction` in the window
/// they registered in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewSeller {
    /// The person's id.
    pub person: usize,
    /// Their name.
    pub name: String,
    /// The auction they opened.
    pub auction: usize,
}

/// q8: new users who opened auctions, per 10 s window.
pub fn q8<'s>(events: Stream<'s, (), Event>) -> Stream<'s, usize, NewSeller> {
    let persons = events
        .clone()
        .flat_map("persons", |e| match e {
            Event::Person(p) => Some(p),
            _ => None,
        })
        .key_by("by-person", |p: &Person| p.id);
    let auctions = events
        .flat_map("auctions", |e| match e {
            Event::Auction(a) => Some(a),
            _ => None,
        })
        .key_by("by-seller", |a: &Auction| a.seller);
    let window = Windows::tumbling(Duration::from_secs(10));
    persons
        .window_join(
            "new-sellers",
            auctions,
            window,
            JoinKind::Inner,
            Duration::ZERO,
        )
        .flat_map("seller", |j| match j {
            Joined::Both(p, a) => Some(NewSeller {
                person: p.id,
                name: p.name,
                auction: a.id,
            }),
            _ => None,
        })
}
