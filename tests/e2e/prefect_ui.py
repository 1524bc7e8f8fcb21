"""Log into the Prefect UI in headless Chromium, open one flow run, and look for texts on its page.

    prefect_ui.py UI_URL LOGIN FLOW_RUN_ID SCREENSHOT TEXT...

Runs in the platform environment (selenium lives there), driving Debian's chromium through its
chromedriver. Prints one JSON line: {"found": [texts seen], "missing": [texts not seen]}, and saves a
screenshot of the run's page at SCREENSHOT.
"""

from __future__ import annotations

import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_SECONDS = 60


def main() -> None:
    ui, login, flow_run_id, screenshot, *texts = sys.argv[1:]
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1200"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        wait = WebDriverWait(driver, WAIT_SECONDS)
        driver.get(f"{ui}/dashboard")
        password_field = (By.CSS_SELECTOR, "input[type=password]")
        wait.until(expected_conditions.presence_of_element_located(password_field)).send_keys(login)
        driver.find_element(By.XPATH, "//button[normalize-space()='Login']").click()
        wait.until(expected_conditions.invisibility_of_element_located(password_field))
        driver.get(f"{ui}/runs/flow-run/{flow_run_id}")
        deadline = time.monotonic() + WAIT_SECONDS
        page = ""
        while time.monotonic() < deadline:
            page = driver.find_element(By.TAG_NAME, "body").text
            if all(text in page for text in texts):
                break
            time.sleep(0.5)
        driver.save_screenshot(screenshot)
        found = [text for text in texts if text in page]
        print(json.dumps({"found": found, "missing": [text for text in texts if text not in found]}))
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
