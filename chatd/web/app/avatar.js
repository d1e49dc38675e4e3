// 我的头像 in the settings view of /app/: pick a picture, upload it (kind=avatar: the server
// crops it square) and make it the user's (profile.avatar); or remove it. Others see it in
// their conversation list, the chat header and on match found.
import { avatar, upload, uploadErrorText } from "./media.js";
import { clearError, showError } from "./ui.js";

const $ = (sel) => document.querySelector(sel);

/** client, links: the page's. me(): the signed-in user. onChange(avatarId): the user's
 *  avatar changed (the page shows it). Returns {render()}. */
export function setupAvatar({ client, links, me, onChange }) {
  const err = $("#avatar-error");

  function status(text) {
    $("#avatar-status").textContent = text;
  }

  function render() {
    const user = me();
    if (!user) return;
    $("#my-avatar").replaceChildren(avatar(links, user.avatar, user.nickname, "l"));
    $("#avatar-clear").hidden = !user.avatar;
  }

  async function set(media) {
    const { avatar: id } = await client.call("profile.avatar", { media });
    me().avatar = id;
    onChange(id);
    render();
  }

  $("#avatar-pick").addEventListener("click", () => $("#avatar-input").click());
  $("#avatar-input").addEventListener("change", async (ev) => {
    const [file] = ev.target.files;
    ev.target.value = "";
    if (!file) return;
    clearError(err);
    status("上传中… Uploading");
    $("#avatar-pick").disabled = true;
    try {
      const stored = await upload("avatar", file, client.token);
      await set(stored.id);
      status("头像已更新 Avatar updated");
    } catch (e) {
      status("");
      showError(err, `头像未更新 Not changed: ${uploadErrorText(e)}`);
    } finally {
      $("#avatar-pick").disabled = false;
    }
  });

  $("#avatar-clear").addEventListener("click", async () => {
    clearError(err);
    try {
      await set("");
      status("头像已移除 Avatar removed");
    } catch (e) {
      showError(err, e);
    }
  });

  return { render: () => { status(""); clearError(err); render(); } };
}
