//! The run an earlier visit saved: offered to resume, or refused with the reason; and why the
//! current run is not being saved, when it is not.

use leptos::prelude::*;

use crate::page::session::{Found, Session};

#[component]
pub fn SavedRunBanner() -> impl IntoView {
    let s = expect_context::<Session>();
    view! {
        {move || {
            s.keeping
                .found
                .get()
                .map(|found| match found {
                    Found::Resumable(what) => {
                        view! {
                            <div class="banner info" data-testid="saved-run" role="status">
                                <strong>"A saved run can go on: "</strong>
                                {what}
                                ". "
                                <button type="button" data-testid="resume-run" on:click=move |_| s.resume_saved_run()>
                                    "Resume it"
                                </button>
                                " "
                                <button type="button" data-testid="discard-run" on:click=move |_| s.discard_saved_run()>
                                    "Discard it"
                                </button>
                            </div>
                        }
                            .into_any()
                    }
                    Found::Refused(why) => {
                        view! {
                            <div class="banner warning" data-testid="saved-run-refused" role="alert">
                                <strong>"The saved run cannot be resumed: "</strong>
                                {why}
                                " "
                                <button type="button" data-testid="discard-run" on:click=move |_| s.discard_saved_run()>
                                    "Discard it"
                                </button>
                            </div>
                        }
                            .into_any()
                    }
                })
        }}
        {move || {
            s.keeping
                .storage_notice
                .get()
                .map(|why| {
                    view! {
                        <div class="banner warning" data-testid="storage-notice" role="alert">
                            <strong>"This run is not being saved: "</strong>
                            {why}
                        </div>
                    }
                })
        }}
    }
}
