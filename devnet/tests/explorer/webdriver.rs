//! A minimal W3C WebDriver client (only the commands the explorer tests use) and the
//! chromedriver process it talks to.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context as _};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use custody_devnet::process;
use reqwest::Method;
use serde_json::{json, Value};

/// Where Debian's `chromium` package installs the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian's `chromium-driver` package installs the driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long chromedriver may take to say which port it listens on and to become ready.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts at starting chromedriver on a free port.
const DRIVER_START_ATTEMPTS: usize = 3;
/// Deadline of one WebDriver command (a navigation waits for the page's load event).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a page may take to load all its data (`data-ready`).
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Between two looks at a page that is not there yet.
const POLL: Duration = Duration::from_millis(100);
/// The browser window: a laptop screen.
pub const WINDOW: (u64, u64) = (1280, 1000);
/// Tallest full-page screenshot.
const SHOT_HEIGHT_MAX: u64 = 6000;
/// The W3C name of the key holding a web element's id.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process started by this test on a free port; when dropped,
/// it is killed together with any browser process it left running on this test's profile.
pub struct ChromeDriver {
    child: Child,
    url: String,
    /// The browser's fresh profile directory, which also names its processes.
    profile: tempfile::TempDir,
}

impl ChromeDriver {
    /// Starts the driver on a port that was free a moment ago; another process may take it
    /// in between, so a driver that cannot listen is started again on another.
    pub fn start(artefacts: &Path) -> anyhow::Result<ChromeDriver> {
        let mut failures = Vec::new();
        for _ in 0..DRIVER_START_ATTEMPTS {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            match ChromeDriver::start_on(artefacts, port) {
                Ok(driver) => return Ok(driver),
                Err(e) => failures.push(format!("port {port}: {e:#}")),
            }
        }
        bail!("chromedriver did not start:\n{}", failures.join("\n"))
    }

    fn start_on(artefacts: &Path, port: u16) -> anyhow::Result<ChromeDriver> {
        let log = artefacts.join("chromedriver.log");
        let mut child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {CHROMEDRIVER}"))?;
        let stdout = child.stdout.take().context("chromedriver's stdout")?;
        let profile = tempfile::tempdir()?;
        let (lines, announced) = mpsc::channel();
        // Reads what the driver prints for as long as it runs, so that its pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut driver = ChromeDriver {
            child,
            url: String::new(),
            profile,
        };
        let listening = driver.announced_port(&announced)?;
        ensure!(
            listening == port,
            "chromedriver was asked for port {port} and listens on {listening}"
        );
        driver.url = format!("http://127.0.0.1:{port}");
        Ok(driver)
    }

    /// The port from chromedriver's "started successfully on port N." line.
    fn announced_port(&mut self, lines: &mpsc::Receiver<String>) -> anyhow::Result<u16> {
        let deadline = Instant::now() + DRIVER_START_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = lines.recv_timeout(left) else {
                let exited = self.child.try_wait()?;
                bail!(
                    "chromedriver did not announce its port within {DRIVER_START_TIMEOUT:?} \
                     (exit status: {exited:?}); it printed:\n{}",
                    seen.join("\n")
                );
            };
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                return rest
                    .trim_end_matches('.')
                    .trim()
                    .parse()
                    .with_context(|| format!("chromedriver's port in {line:?}"));
            }
            seen.push(line);
        }
    }

    /// Waits until `GET /status` says the driver is ready for a session.
    async fn wait_ready(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + DRIVER_START_TIMEOUT;
        loop {
            let ready = match http.get(format!("{}/status", self.url)).send().await {
                Ok(response) => response.json::<Value>().await.ok(),
                Err(_) => None,
            };
            if ready.is_some_and(|s| s["value"]["ready"] == true) {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "chromedriver at {} was not ready within {DRIVER_START_TIMEOUT:?}",
                self.url
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A browser the driver started and could not close runs on this test's profile.
        let profile = self.profile.path().display().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for pid in entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        {
            if process::is_alive(pid) && process::cmdline(pid).contains(&profile) {
                let _ = process::signal(pid, "KILL");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal W3C WebDriver client

/// A browser session.
pub struct Session {
    http: reqwest::Client,
    /// `{driver}/session/{id}`.
    base: String,
    /// Where screenshots go.
    pub artefacts: PathBuf,
}

/// A web element, by its WebDriver id.
pub struct Element(String);

impl Session {
    /// Opens headless Chromium on a fresh profile, keeping every browser console entry.
    pub async fn open(driver: &ChromeDriver, artefacts: &Path) -> anyhow::Result<Session> {
        let http = reqwest::Client::builder()
            .timeout(COMMAND_TIMEOUT)
            .build()?;
        driver.wait_ready(&http).await?;
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            format!("--user-data-dir={}", driver.profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
            "timeouts": {"pageLoad": PAGE_TIMEOUT.as_millis() as u64, "script": 30_000},
        }}});
        let response = http
            .post(format!("{}/session", driver.url))
            .json(&capabilities)
            .send()
            .await
            .context("POST /session")?;
        let value = webdriver_value(response, "POST /session").await?;
        let id = value["sessionId"]
            .as_str()
            .with_context(|| format!("no session id in {value}"))?;
        Ok(Session {
            http,
            base: format!("{}/session/{id}", driver.url),
            artefacts: artefacts.to_owned(),
        })
    }

    /// One command; its `value`, or the driver's error.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let what = format!("{method} {path}");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        // POSTs carry a JSON object even when they have nothing to say.
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| what.clone())?;
        webdriver_value(response, &what).await
    }

    pub async fn close(&self) -> anyhow::Result<()> {
        self.call(Method::DELETE, "", None).await.map(drop)
    }

    /// Loads `url` and waits for its load event.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.call(Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(drop)
    }

    /// Runs `body` as a function of `args` in the page; its return value.
    pub async fn script(&self, body: &str, args: Value) -> anyhow::Result<Value> {
        self.call(
            Method::POST,
            "/execute/sync",
            Some(json!({"script": body, "args": args})),
        )
        .await
    }

    pub async fn find(&self, css: &str) -> anyhow::Result<Element> {
        let value = self
            .call(
                Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .with_context(|| format!("finding `{css}`"))?;
        element(&value).with_context(|| format!("`{css}`"))
    }

    pub async fn click(&self, element: &Element) -> anyhow::Result<()> {
        self.call(
            Method::POST,
            &format!("/element/{}/click", element.0),
            Some(json!({})),
        )
        .await
        .map(drop)
    }

    pub async fn type_text(&self, element: &Element, text: &str) -> anyhow::Result<()> {
        self.call(
            Method::POST,
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        )
        .await
        .map(drop)
    }

    pub async fn resize(&self, width: u64, height: u64) -> anyhow::Result<()> {
        self.call(
            Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await
        .map(drop)
    }

    /// A PNG of the whole page (the window is stretched to the page's height for it), as
    /// `name`.png in the artefact directory; returns the file.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        self.capture(name, true).await
    }

    /// A PNG of the page, whole or as much as the window shows.
    pub async fn capture(&self, name: &str, whole: bool) -> anyhow::Result<PathBuf> {
        if !whole {
            let shot = self.call(Method::GET, "/screenshot", None).await?;
            return self.save_png(name, &shot);
        }
        let height = self
            .script(
                "return Math.max(document.documentElement.scrollHeight, \
                 document.body ? document.body.scrollHeight : 0);",
                json!([]),
            )
            .await?
            .as_u64()
            .unwrap_or(WINDOW.1)
            .clamp(WINDOW.1, SHOT_HEIGHT_MAX);
        self.resize(WINDOW.0, height).await?;
        let shot = self.call(Method::GET, "/screenshot", None).await;
        self.resize(WINDOW.0, WINDOW.1).await?;
        self.save_png(name, &shot?)
    }

    fn save_png(&self, name: &str, shot: &Value) -> anyhow::Result<PathBuf> {
        let png = STANDARD
            .decode(shot.as_str().context("a base64 screenshot")?)
            .context("the screenshot's base64")?;
        let path = self.artefacts.join(format!("{name}.png"));
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// The browser console's entries since the last call (the driver hands each out once).
    pub async fn console(&self) -> anyhow::Result<Vec<Value>> {
        let entries = self
            .call(Method::POST, "/se/log", Some(json!({"type": "browser"})))
            .await?;
        Ok(entries.as_array().cloned().unwrap_or_default())
    }

    /// Checks that console errors reach the log at all, so that a clean log means something.
    pub async fn assert_console_is_recorded(&self) -> anyhow::Result<()> {
        const MARKER: &str = "explorer test: the console is recorded";
        self.script("console.error(arguments[0]);", json!([MARKER]))
            .await?;
        let entries = self.console().await?;
        ensure!(
            entries.iter().any(|e| e["level"] == "SEVERE"
                && e["message"].as_str().is_some_and(|m| m.contains(MARKER))),
            "a console.error did not reach the browser log ({entries:?}): check \
             goog:loggingPrefs"
        );
        Ok(())
    }

    /// Fails if the console got a SEVERE entry since the last look (a failed request, an
    /// uncaught exception, `console.error`).
    pub async fn assert_clean_console(&self, page: &str) -> anyhow::Result<()> {
        let severe: Vec<String> = self
            .console()
            .await?
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect();
        ensure!(
            severe.is_empty(),
            "the browser console has errors on the {page}:\n{}",
            severe.join("\n")
        );
        Ok(())
    }

    /// What the page shows, for error messages.
    pub async fn describe(&self) -> String {
        self.script(
            "const m = document.querySelector('main#page');\
             return `${location.href}\\n<main> data-page=${m && m.dataset.page} \
             data-ready=${m && m.dataset.ready}\\n` + \
             (document.body ? document.body.innerText.slice(0, 1500) : '(no body)');",
            json!([]),
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "(the page could not be read)".to_owned())
    }

    /// Polls `body` until it returns something other than null or false, for at most
    /// `within`; on timeout, saves a screenshot and says what the page showed.
    pub async fn wait_for(
        &self,
        what: &str,
        body: &str,
        args: Value,
        within: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let value = self.script(body, args.clone()).await?;
            if !value.is_null() && value != false {
                return Ok(value);
            }
            if Instant::now() > deadline {
                let shot = self.screenshot("timeout").await.ok();
                bail!(
                    "waited {within:?} for {what}; screenshot {shot:?}; the page shows:\n{}",
                    self.describe().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `main#page` is the `page` page and has loaded all its data; another page
    /// finishing instead is an error at once.
    pub async fn wait_page(&self, page: &str) -> anyhow::Result<()> {
        let state = self
            .wait_for(
                &format!("main#page[data-page={page}][data-ready=true]"),
                "if (window.explorerTestLeft) return null;\
                 const m = document.querySelector('main#page');\
                 return m && m.dataset.ready === 'true' ? m.dataset.page : null;",
                json!([]),
                PAGE_TIMEOUT,
            )
            .await?;
        if state != page {
            let shot = self.screenshot(&format!("unexpected-{page}")).await.ok();
            bail!(
                "expected the {page} page, got the {state} page; screenshot {shot:?}:\n{}",
                self.describe().await
            );
        }
        Ok(())
    }

    /// Marks the document shown as left, before an action that loads another: until the new
    /// one replaces it, the old page, ready as it is, must not pass for the next.
    pub async fn leave(&self) -> anyhow::Result<()> {
        self.script("window.explorerTestLeft = true;", json!([]))
            .await
            .map(drop)
    }

    /// The path and query of the page shown.
    pub async fn location(&self) -> anyhow::Result<String> {
        let value = self
            .script("return location.pathname + location.search;", json!([]))
            .await?;
        value.as_str().map(str::to_owned).context("location")
    }

    /// Text of the first element matching `css`, or `None`.
    pub async fn text(&self, css: &str) -> anyhow::Result<Option<String>> {
        let value = self
            .script(
                "const e = document.querySelector(arguments[0]);\
                 return e ? e.textContent.trim() : null;",
                json!([css]),
            )
            .await?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// An attribute of the first element matching `css`, or `None`.
    pub async fn attribute(&self, css: &str, name: &str) -> anyhow::Result<Option<String>> {
        let value = self
            .script(
                "const e = document.querySelector(arguments[0]);\
                 return e ? e.getAttribute(arguments[1]) : null;",
                json!([css, name]),
            )
            .await?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// The first link on the page whose target path is `path`.
    pub async fn link_to(&self, path: &str) -> anyhow::Result<Element> {
        let value = self
            .script(
                "return Array.from(document.querySelectorAll('a[href]'))\
                 .find(a => new URL(a.href).pathname === arguments[0]) || null;",
                json!([path]),
            )
            .await?;
        element(&value).with_context(|| format!("no link to {path}"))
    }
}

/// The `value` of a WebDriver answer, or its error as text.
async fn webdriver_value(response: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("{what}: an answer that is not JSON ({status})"))?;
    let value = body.get("value").cloned().unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "{what}: {status} {}: {}",
            value["error"].as_str().unwrap_or("error"),
            value["message"].as_str().unwrap_or_default()
        );
    }
    Ok(value)
}

fn element(value: &Value) -> anyhow::Result<Element> {
    value[ELEMENT_KEY]
        .as_str()
        .map(|id| Element(id.to_owned()))
        .ok_or_else(|| anyhow!("not an element: {value}"))
}
