// The register and login forms of /app/ (the development SMS code is shown and filled in),
// and the device label each new session is given (shown in 登录设备 on every device).
import { clearError, showError } from "./ui.js";
import { checkedInterests } from "./views.js";

const $ = (sel) => document.querySelector(sel);

/** "网页 Web · Chrome · Android": the `device` of register and login (at most 64 characters). */
export function deviceLabel(ua = navigator.userAgent) {
  const browser = [
    [/MicroMessenger\//, "微信 WeChat"], [/Edg(A|iOS)?\//, "Edge"], [/OPR\//, "Opera"],
    [/Firefox\/|FxiOS\//, "Firefox"], [/Chrome\/|CriOS\//, "Chrome"], [/Safari\//, "Safari"],
  ].find(([re]) => re.test(ua))?.[1];
  const os = [
    [/Android/, "Android"], [/iPhone|iPad|iPod/, "iOS"], [/Windows/, "Windows"],
    [/CrOS/, "ChromeOS"], [/Mac OS X/, "macOS"], [/Linux/, "Linux"],
  ].find(([re]) => re.test(ua))?.[1];
  return ["网页 Web", browser, os].filter(Boolean).join(" · ").slice(0, 64);
}

/** onSignedIn(user): called after a successful register or login (the token is kept). */
export function setupAccountForms({ client, onSignedIn }) {
  $("#reg-sms").addEventListener("click", async () => {
    const err = $("#register .error");
    clearError(err);
    const out = $("#reg-devcode");
    try {
      const reply = await client.call("sms.send", { phone: $("#reg-phone").value, purpose: "register" });
      if (reply.dev_code) {
        $("#reg-code").value = reply.dev_code;
        out.textContent = `开发模式验证码 Development code: ${reply.dev_code}（已自动填入 filled in）`;
      } else {
        out.textContent = `验证码已发送，${reply.ttl} 秒内有效 Code sent`;
      }
      out.hidden = false;
    } catch (e) {
      showError(err, e);
    }
  });

  $("#register").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = ev.target;
    const err = form.querySelector(".error");
    clearError(err);
    const interests = checkedInterests($("#reg-interests"));
    if (!interests.length) {
      showError(err, "请至少选择一个兴趣 Pick at least one interest");
      return;
    }
    const f = new FormData(form);
    try {
      const user = await client.signIn("register", {
        phone: f.get("phone"), code: f.get("code"), password: f.get("password"),
        nickname: f.get("nickname"), birthdate: f.get("birthdate"), gender: f.get("gender"),
        interests, device: deviceLabel(),
      });
      form.reset();
      $("#reg-devcode").hidden = true;
      await onSignedIn(user);
    } catch (e) {
      showError(err, e);
    }
  });

  $("#login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = ev.target;
    const err = form.querySelector(".error");
    clearError(err);
    const f = new FormData(form);
    try {
      const user = await client.signIn("login", {
        phone: f.get("phone"), password: f.get("password"), device: deviceLabel(),
      });
      form.reset();
      await onSignedIn(user);
    } catch (e) {
      showError(err, e);
    }
  });
}
