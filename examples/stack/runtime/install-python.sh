apk add python3
