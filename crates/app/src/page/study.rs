//! The page's study mode: which runs the worker trains side by side ([`Study`], interleaved
//! chunk by chunk there), each run's place in its epoch, and which of them the rest of the page
//! shows. The training itself is the worker's (`worker/study.rs`).

use fashion_core::study::Study;
use fashion_core::Progress;
use leptos::prelude::*;

use super::session::Session;
use crate::protocol::Command;

/// The study's signals. `Copy`: every field is a handle.
#[derive(Clone, Copy)]
pub struct StudySession {
    /// The runs and their epochs so far (`None` before a study starts).
    pub study: RwSignal<Option<Study>>,
    /// Each run's place in the epoch it trains now.
    pub progress: RwSignal<Vec<Option<Progress>>>,
    /// The model the rest of the page shows: the user's pick, else the best so far.
    pub shown: RwSignal<Option<String>>,
}

impl StudySession {
    pub fn new() -> Self {
        StudySession { study: RwSignal::new(None), progress: RwSignal::new(Vec::new()), shown: RwSignal::new(None) }
    }

    /// Trains the settings' study models, each with the settings' recipe, on the same data.
    pub fn start(self, s: Session) {
        s.refused.set(None);
        s.send(Command::Study { settings: s.settings.with_untracked(crate::settings::Settings::to_query) });
    }

    /// Ends the study's running epochs early; each model keeps what it learnt so far.
    pub fn stop(self, s: Session) {
        s.send(Command::Stop);
    }

    /// Shows `model` in the rest of the page, from now on.
    pub fn pick(self, s: Session, model: String) {
        self.shown.set(Some(model.clone()));
        s.send(Command::ShowStudyModel { model });
    }
}

impl Default for StudySession {
    fn default() -> Self {
        Self::new()
    }
}
