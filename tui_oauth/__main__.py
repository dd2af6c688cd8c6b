from tui_oauth.cli import main

if __name__ == "__main__":
    main()
