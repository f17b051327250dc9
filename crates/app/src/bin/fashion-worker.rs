//! The page's training worker (built by Trunk as `fashion-worker.js`, started by the page).

fn main() {
    fashion_app::worker::start();
}
