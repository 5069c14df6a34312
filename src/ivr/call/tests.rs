//! The per-call API against a scripted media side, on tokio's paused clock.

use super::*;

fn library() -> Arc<PromptLibrary> {
    crate::testing::shipped_prompts()
}

struct Script {
    commands: mpsc::UnboundedReceiver<MediaCommand>,
    events: mpsc::UnboundedSender<MediaEvent>,
    requests: mpsc::UnboundedReceiver<(u64, CallRequest)>,
    /// Kept open: the call waits on it only while transferring.
    _transfers: mpsc::UnboundedSender<TransferOutcome>,
}

fn new_call() -> (Call, Script) {
    let (media, commands) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (requests_tx, requests) = mpsc::unbounded_channel();
    let (transfers, transfers_rx) = mpsc::unbounded_channel();
    let call = Call::new(
        "test".into(),
        1,
        media,
        events,
        requests_tx,
        transfers_rx,
        library(),
    );
    (
        call,
        Script {
            commands,
            events: events_tx,
            requests,
            _transfers: transfers,
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

fn question() -> Ask<'static> {
    Ask {
        prompt: Some("enter_account"),
        min_digits: 1,
        max_digits: 10,
        terminator: Some('#'),
        first_timeout: Duration::from_secs(10),
        inter_timeout: Duration::from_secs(5),
        attempts: 1,
        retry_prompt: None,
        barge_in: true,
        secret: false,
        pattern: None,
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
        let answer = call.ask(&question()).await;
        (call, answer)
    });
    tokio::task::yield_now().await;
    let (name, id, interruptible) = played(&mut script).expect("welcome plays");
    assert_eq!((name.as_str(), interruptible), ("welcome", false));
    script.events.send(MediaEvent::PlaybackDone { id }).unwrap();
    let (_, answer) = say.await.unwrap();
    assert_eq!(answer, Answer::Digits("42".into()));
    assert!(
        played(&mut script).is_none(),
        "the question's prompt is skipped: keys were waiting"
    );
}

#[tokio::test(start_paused = true)]
async fn a_key_during_the_prompt_barges_in_and_reading_goes_on() {
    let (mut call, mut script) = new_call();
    let task = tokio::spawn(async move { call.ask(&question()).await });
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
    assert_eq!(task.await.unwrap(), Answer::Digits("78".into()));
}

#[tokio::test(start_paused = true)]
async fn first_and_inter_digit_timeouts_end_the_question() {
    let (mut call, script) = new_call();
    let spec = Ask {
        prompt: None,
        min_digits: 2,
        ..question()
    };
    let started = Instant::now();
    assert_eq!(call.ask(&spec).await, Answer::Timeout);
    assert_eq!(started.elapsed(), Duration::from_secs(10));

    key(&script, '1');
    let started = Instant::now();
    assert_eq!(call.ask(&spec).await, Answer::TooFew);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(5),
        "inter-digit timeout after the last key"
    );

    for d in "12".chars() {
        key(&script, d);
    }
    assert_eq!(
        call.ask(&spec).await,
        Answer::Digits("12".into()),
        "enough digits and a timeout is an answer"
    );
}

#[tokio::test(start_paused = true)]
async fn exact_length_questions_take_the_terminator_and_refuse_one_digit_more() {
    let (mut call, script) = new_call();
    let pin = Ask {
        prompt: None,
        min_digits: 4,
        max_digits: 4,
        secret: true,
        pattern: None,
        ..question()
    };
    for d in "1234#".chars() {
        key(&script, d);
    }
    assert_eq!(call.ask(&pin).await, Answer::Digits("1234".into()));
    for d in "12345#".chars() {
        key(&script, d);
    }
    assert_eq!(call.ask(&pin).await, Answer::TooMany);
    key(&script, '#');
    assert_eq!(
        call.ask(&pin).await,
        Answer::TooFew,
        "the rest of a failed answer is dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn attempts_replay_the_prompt_after_the_retry_prompt() {
    let (mut call, mut script) = new_call();
    let spec = Ask {
        attempts: 3,
        retry_prompt: Some("try_again"),
        barge_in: false,
        ..question()
    };
    let task = tokio::spawn(async move { call.ask(&spec).await });
    let mut heard = Vec::new();
    while let Some(MediaCommand::Play { prompt, id, .. }) = script.commands.recv().await {
        heard.push(prompt.name.clone());
        if heard.len() == 5 {
            for d in "99#".chars() {
                key(&script, d);
            }
        }
        script.events.send(MediaEvent::PlaybackDone { id }).unwrap();
        if heard.len() == 5 {
            break;
        }
    }
    assert_eq!(task.await.unwrap(), Answer::Digits("99".into()));
    assert_eq!(
        heard,
        [
            "enter_account",
            "try_again",
            "enter_account",
            "try_again",
            "enter_account"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn hang_up_and_silence_end_the_call_at_once() {
    let (mut call, mut script) = new_call();
    script.events.send(MediaEvent::Inactive).unwrap();
    assert_eq!(call.ask(&question()).await, Answer::HungUp);
    assert_eq!(
        script.requests.try_recv(),
        Ok((1, CallRequest::Hangup)),
        "silence asks for a BYE"
    );

    let (mut call, script) = new_call();
    drop(script);
    assert_eq!(call.say("welcome").await, Err(Gone));
}

#[tokio::test(start_paused = true)]
async fn the_call_says_what_ended_each_answer() {
    let no_prompt = |terminator, max_digits| Ask {
        prompt: None,
        terminator,
        max_digits,
        ..question()
    };
    let (mut call, script) = new_call();
    for d in "12#".chars() {
        key(&script, d);
    }
    assert_eq!(
        call.ask(&no_prompt(Some('#'), 10)).await,
        Answer::Digits("12".into())
    );
    assert_eq!(call.answer_end(), AnswerEnd::Terminator);
    for d in "1234".chars() {
        key(&script, d);
    }
    assert_eq!(
        call.ask(&no_prompt(None, 4)).await,
        Answer::Digits("1234".into())
    );
    assert_eq!(call.answer_end(), AnswerEnd::MaxDigits);
    key(&script, '5');
    // Enough digits, then silence past the inter-digit timeout (the paused clock runs ahead).
    assert_eq!(
        call.ask(&no_prompt(Some('#'), 10)).await,
        Answer::Digits("5".into())
    );
    assert_eq!(call.answer_end(), AnswerEnd::Timeout);
}
