//! The per-call API against a scripted media side, on tokio's paused clock.

use super::*;
use crate::media::codec::Codec;

fn library() -> Arc<PromptLibrary> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
    Arc::new(PromptLibrary::load(&dir, &[Codec::Pcmu]).unwrap())
}

struct Script {
    commands: mpsc::UnboundedReceiver<MediaCommand>,
    events: mpsc::UnboundedSender<MediaEvent>,
    hangups: mpsc::UnboundedReceiver<u64>,
}

fn new_call() -> (Call, Script) {
    let (media, commands) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (hangup, hangups) = mpsc::unbounded_channel();
    let call = Call::new("test".into(), 1, media, events, hangup, library());
    (
        call,
        Script {
            commands,
            events: events_tx,
            hangups,
        },
    )
}

fn key(script: &Script, digit: char) {
    script
        .events
        .send(MediaEvent::Digit {
            digit,
            source: DigitSource::Rfc4733,
        })
        .unwrap();
}

fn question() -> Collect<'static> {
    Collect {
        prompt: Some("enter_account"),
        max_digits: 10,
        terminator: Some('#'),
        first_timeout: Duration::from_secs(10),
        inter_timeout: Duration::from_secs(5),
        interruptible: true,
        secret: false,
    }
}

fn played(script: &mut Script) -> Option<(String, u64, bool)> {
    match script.commands.try_recv().ok()? {
        MediaCommand::Play {
            prompt,
            id,
            interruptible,
        } => Some((prompt.name.clone(), id, interruptible)),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn keys_typed_ahead_skip_the_prompt_and_answer_the_question() {
    let (mut call, mut script) = new_call();
    for d in "42#".chars() {
        key(&script, d);
    }
    // Drain them into the buffer while a non-interruptible prompt plays.
    let say = tokio::spawn(async move {
        call.say("welcome").await.unwrap();
        let answer = call.collect(&question()).await.unwrap();
        (call, answer)
    });
    tokio::task::yield_now().await;
    let (name, id, interruptible) = played(&mut script).expect("welcome plays");
    assert_eq!((name.as_str(), interruptible), ("welcome", false));
    script.events.send(MediaEvent::PlaybackDone { id }).unwrap();
    let (_, answer) = say.await.unwrap();
    assert_eq!(
        answer,
        Collected {
            digits: "42".into(),
            ended: Ended::Terminator
        }
    );
    assert!(
        played(&mut script).is_none(),
        "the question's prompt is skipped: keys were waiting"
    );
}

#[tokio::test(start_paused = true)]
async fn a_key_during_the_prompt_barges_in_and_reading_goes_on() {
    let (mut call, mut script) = new_call();
    let task = tokio::spawn(async move { call.collect(&question()).await });
    tokio::task::yield_now().await;
    let (name, id, interruptible) = played(&mut script).unwrap();
    assert_eq!((name.as_str(), interruptible), ("enter_account", true));
    // The media task stops the prompt itself and says so.
    key(&script, '7');
    script
        .events
        .send(MediaEvent::PlaybackStopped { id })
        .unwrap();
    key(&script, '8');
    key(&script, '#');
    let answer = task.await.unwrap().unwrap();
    assert_eq!(answer.digits, "78");
    assert_eq!(answer.ended, Ended::Terminator);
}

#[tokio::test(start_paused = true)]
async fn first_and_inter_digit_timeouts_end_the_question() {
    let (mut call, script) = new_call();
    let spec = Collect {
        prompt: None,
        ..question()
    };
    let started = Instant::now();
    let answer = call.collect(&spec).await.unwrap();
    assert_eq!(answer.ended, Ended::Timeout);
    assert_eq!(started.elapsed(), Duration::from_secs(10));

    key(&script, '1');
    let started = Instant::now();
    let answer = call.collect(&spec).await.unwrap();
    assert_eq!(
        (answer.digits.as_str(), answer.ended),
        ("1", Ended::Timeout)
    );
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(5),
        "inter-digit timeout after the last key"
    );
}

#[tokio::test(start_paused = true)]
async fn max_digits_ends_without_terminator_and_leaves_the_rest_typed_ahead() {
    let (mut call, script) = new_call();
    for d in "123456".chars() {
        key(&script, d);
    }
    let spec = Collect {
        prompt: None,
        max_digits: 4,
        ..question()
    };
    let first = call.collect(&spec).await.unwrap();
    assert_eq!(
        (first.digits.as_str(), first.ended),
        ("1234", Ended::MaxDigits)
    );
    let rest = call.collect(&spec).await.unwrap();
    assert_eq!((rest.digits.as_str(), rest.ended), ("56", Ended::Timeout));
}

#[tokio::test(start_paused = true)]
async fn hang_up_and_silence_end_the_call_at_once() {
    let (mut call, mut script) = new_call();
    script.events.send(MediaEvent::Inactive).unwrap();
    assert_eq!(call.collect(&question()).await, Err(Gone));
    assert_eq!(script.hangups.try_recv(), Ok(1), "silence asks for a BYE");

    let (mut call, script) = new_call();
    drop(script);
    assert_eq!(call.say("welcome").await, Err(Gone));
}
