apk add nodejs
