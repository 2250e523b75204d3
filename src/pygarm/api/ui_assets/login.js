"use strict";
if (new URLSearchParams(location.search).has("failed")) {
  document.getElementById("login-error").hidden = false;
}
